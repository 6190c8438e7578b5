"""The cluster's Redis layout: key and channel names, the Lua scripts, event encoding. No I/O.

Every key starts with a prefix (default ``gs:``) so several clusters can share one Redis.

    {p}lease:{room}       string  node id of the room's host; PX LEASE_MS, renewed by the host
    {p}room:{room}        hash    lobby entry: game, clients, max_players, node, url, updated
    {p}rooms              zset    room -> last update (ms): the lobby's index
    {p}resv:{room}        zset    reservation -> expiry (ms): seats held for redirected joins
    {p}state:{room}       string  the room's last save (gamesync.core.saved), binary
    {p}kept:{room}        string  what its game keeps past the room (core.saved.pack_kept); PX KEPT_MS
    {p}node:{node}        hash    url, http, rooms, clients, tick_load, draining; PX NODE_TTL_MS
    {p}nodes              zset    node -> last heartbeat (ms): live and dead nodes
    {p}noderooms:{node}   set     rooms the node hosts (what a failover takes over)
    {p}presence:{node}    hash    "{room}/{client}" -> JSON {room, client, name, player, node}; PX NODE_TTL_MS

    channels: {p}ev:room:{room} (events for one room), {p}ev:all (every room),
              {p}ctl:{node} (commands to one node: adopt a handed-over room; answers to
              its reliable sends), {p}ans:{id} (answers to a Publisher's reliable send)
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_PREFIX = "gs:"
#: a room's lease lives this long unless renewed
LEASE_MS = 3000
#: a node's registration lives this long unless refreshed
NODE_TTL_MS = 3000
#: a node whose last heartbeat is older than this is dead; its rooms are taken over
NODE_DEAD_MS = 3000
#: a lobby entry (and a dead node's room list) is kept this long after its last update
ROOM_INFO_MS = 30_000
#: a room's last save is kept this long after it was written
STATE_MS = 120_000
#: what a room's game keeps past the room (chat history, a document) is kept this long after it was written
KEPT_MS = 30 * 86_400_000
#: a reservation made for a redirect holds a seat this long
RESERVATION_MS = 10_000


class Keys:
    """Key and channel names under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.p = prefix
        self.rooms = f"{prefix}rooms"
        self.nodes = f"{prefix}nodes"
        self.all_channel = f"{prefix}ev:all"

    def lease(self, room: str) -> str:
        return f"{self.p}lease:{room}"

    def room(self, room: str) -> str:
        return f"{self.p}room:{room}"

    def resv(self, room: str) -> str:
        return f"{self.p}resv:{room}"

    def state(self, room: str) -> str:
        return f"{self.p}state:{room}"

    def kept(self, room: str) -> str:
        return f"{self.p}kept:{room}"

    def node(self, node: str) -> str:
        return f"{self.p}node:{node}"

    def node_rooms(self, node: str) -> str:
        return f"{self.p}noderooms:{node}"

    def presence(self, node: str) -> str:
        return f"{self.p}presence:{node}"

    def room_channel(self, room: str) -> str:
        return f"{self.p}ev:room:{room}"

    def ctl_channel(self, node: str) -> str:
        return f"{self.p}ctl:{node}"

    def answer_channel(self, name: str) -> str:
        return f"{self.p}ans:{name}"

    def room_of_channel(self, channel: str) -> str | None:
        head = f"{self.p}ev:room:"
        return channel[len(head):] if channel.startswith(head) else None


#: renew every lease in KEYS held by ARGV[1] for ARGV[2] ms; a missing one (Redis restarted,
#: or the lease lapsed while Redis was unreachable) is taken again. Per key: 1 renewed,
#: 2 taken again, 0 held by another node (the room must go).
RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2]); out[i] = 1
  elseif not v then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2]); out[i] = 2
  else
    out[i] = 0
  end
end
return out
"""

#: release KEYS[1] if ARGV[1] holds it: 1 released, 0 not ours
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: hand KEYS[1] from ARGV[1] to ARGV[2] for ARGV[3] ms, moving the room (ARGV[4]) from
#: KEYS[2] (the old host's room set) to KEYS[3] (the new one's): 1 done, 0 not ours
TRANSFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""

#: reserve a seat: KEYS[1] the room's reservations, KEYS[2] its lobby entry; ARGV: token,
#: now (ms), expiry (ms), fallback max players. Drops lapsed reservations, then adds this one
#: unless players + live reservations already fill the room. 1 reserved, 0 full.
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local clients = tonumber(redis.call('HGET', KEYS[2], 'clients') or '0')
local max = tonumber(redis.call('HGET', KEYS[2], 'max_players') or ARGV[4])
if clients + redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3] - ARGV[2] + 1000)
return 1
"""


def encode_event(data: Any, *, room: str | None, player: str | None = None, origin: str | None = None,
                 send: dict[str, Any] | None = None) -> str:
    """A cross-node event as published: JSON, so that any service can publish one. ``send``
    makes it a reliable send to ``player`` (gamesync.sends): ``{"id": str, "to": channel for
    the answers, "ms": time left, "reply": bool}``."""
    msg: dict[str, Any] = {"data": data}
    if send is not None:
        msg["send"] = send
    if room is not None:
        msg["room"] = room
    if player is not None:
        msg["player"] = player
    if origin is not None:
        msg["origin"] = origin
    return json.dumps(msg, separators=(",", ":"))


def decode_event(raw: str | bytes) -> dict[str, Any] | None:
    """A published event, or None if it is not one (logged and dropped by the node)."""
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(msg, dict) or "data" not in msg:
        return None
    for k in ("room", "player", "origin"):
        if k in msg and not isinstance(msg[k], str):
            return None
    if "send" in msg:
        s = msg["send"]
        if not (isinstance(s, dict) and isinstance(s.get("id"), str) and isinstance(s.get("to"), str)
                and type(s.get("ms")) in (int, float) and isinstance(s.get("reply"), bool)
                and isinstance(msg.get("player"), str)):
            return None
    return msg


def encode_answer(send_id: str, acked: bool, replied: bool, reply: Any) -> str:
    """A delivering node's answer to a reliable send, published on the send's ``to`` channel."""
    return json.dumps({"answer": {"id": send_id, "acked": acked, "replied": replied, "reply": reply}},
                      separators=(",", ":"))


def decode_answer(raw: str | bytes) -> tuple[str, bool, bool, Any] | None:
    """(id, acked, replied, reply) of an answer; None if it is not one."""
    try:
        a = json.loads(raw).get("answer")
    except (ValueError, AttributeError):
        return None
    if not (isinstance(a, dict) and isinstance(a.get("id"), str) and isinstance(a.get("acked"), bool)
            and isinstance(a.get("replied"), bool)):
        return None
    return a["id"], a["acked"], a["replied"], a.get("reply")
