# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native twins of the bot swarm's per-state and per-input work, and of what it keeps per bot.

``DecodeCache`` and ``Mirror`` are gamesync.core.mirror's, ``ReadySet`` is gamesync.sockio's,
``BotCore``, ``read_ready`` and ``send_slot`` are gamesync.client.botcore's: the same interfaces,
the same results (tests/client/test_botcore.py and tests/core/test_mirror.py run both). What
makes them cheaper: one call per reader wake-up reads every ready bot's socket and applies its
usual snapshots (fields read from the bytes, the mirror's ticks in C arrays, the decode cache's
last entry compared without making its key, the stats and the inputs awaiting their ack in the
bot's own C fields), and one call per send slot builds, masks and sends every due bot's input.
Anything else goes back to Python as it came.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_SetFromErrno
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy

import os

from gamesync.native._shared cimport Snap, grow, put_int, read_snapshot, send_masked_frame

from gamesync.core.delta import decode_delta, decompress_payload
from gamesync.core.errors import DesyncError, GamesyncError, PayloadError
from gamesync.native._wire import FrameReader as _WireReader
from gamesync.native._wire import recv_frames as _recv_frames


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
    cdef struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int EPOLLIN, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CLOEXEC

cdef extern from "<unistd.h>" nogil:
    int c_close "close"(int fd)

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL

cdef enum:
    NO_TICK = -1
    ACK_BITS = 32
    VISIBLE_EVERY = 8  # gamesync.client.botcore.VISIBLE_EVERY
    MAX_PENDING = 256  # gamesync.client.botcore.MAX_PENDING_INPUTS
    MAX_INPUT = 64  # the largest input message built here (header, seq, two small ints)
    # read_ready's third field: what Python does with a bot (>= 0: the general path from that message)
    FAILED = -1
    PUMP = -2
    ABSORB = -3

TURN = (-1, 0, 1)


# -- the decode cache and the mirror ---------------------------------------------------------------

cdef class DecodeCache:
    """See gamesync.core.mirror.DecodeCache: the same interface, results and ``_d``."""

    cdef public Py_ssize_t keep_ticks
    cdef public dict _d
    cdef public long long _newest
    cdef public Py_ssize_t hits
    cdef public Py_ssize_t misses
    cdef object _last  # the state of the last lookup (None: none yet), its key's fields below
    cdef bytes _last_payload
    cdef long long _lt, _lb, _lr, _lf
    cdef long long _floor  # keys under this tick were dropped

    def __init__(self, Py_ssize_t keep_ticks=64):
        self.keep_ticks = keep_ticks
        self._d = {}
        self._newest = -1
        self.hits = 0
        self.misses = 0
        self._last = None
        self._floor = -(1LL << 62)

    def decode(self, schema, long long tick, base, ref, long long flags, bytes payload not None):
        return self._decode(schema, tick, base, base.tick if base is not None else -1, ref,
                            ref.tick if ref is not None else -1, flags, payload)

    cdef inline object _hit_last(self, long long tick, long long bt, long long rt, long long flags,
                                 const char *p, Py_ssize_t n):
        """The last entry when the key is its key (counted as a hit), else None."""
        if (self._last is not None and tick == self._lt and bt == self._lb and rt == self._lr and flags == self._lf
                and tick >= self._floor and PyBytes_GET_SIZE(self._last_payload) == n
                and memcmp(PyBytes_AS_STRING(self._last_payload), p, n) == 0):
            self.hits += 1
            return self._last
        return None

    cdef object _decode(self, schema, long long tick, base, long long bt, ref, long long rt, long long flags,
                        bytes payload):
        st = self._hit_last(tick, bt, rt, flags, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
        if st is not None:
            return st
        key = (tick, bt, rt, flags, payload)
        st = self._d.get(key)
        if st is not None:
            self.hits += 1
        else:
            self.misses += 1
            st = decode_delta(schema, decompress_payload(flags, payload), tick, base, ref)
            self._d[key] = st
            if tick > self._newest:
                self._newest = tick
                self._floor = tick - self.keep_ticks
                for k in [k for k in self._d if k[0] < self._floor]:
                    del self._d[k]
        self._last, self._last_payload = st, payload
        self._lt, self._lb, self._lr, self._lf = tick, bt, rt, flags
        return st


cdef class Mirror:
    """See gamesync.core.mirror.Mirror: the same interface and results; the ticks held and their
    baselines are C arrays in tick order (ticks only grow), the states a list beside them."""

    cdef public object schema
    cdef public Py_ssize_t history
    cdef readonly object cache  # readonly: _fast follows it
    cdef readonly object latest
    cdef long long _top  # latest.tick
    cdef DecodeCache _fast  # cache, when it is this module's
    cdef long long *_ticks
    cdef long long *_bases
    cdef char *_keep
    cdef long long *_unheld  # _prune's scratch: baselines it does not hold
    cdef list _held
    cdef Py_ssize_t _n, _cap

    def __cinit__(self):
        self._ticks = self._bases = NULL
        self._keep = NULL
        self._unheld = NULL
        self._n = self._cap = 0

    def __init__(self, schema, Py_ssize_t history, cache=None):
        self.schema = schema
        self.history = history
        self.cache = cache
        self._fast = cache if type(cache) is DecodeCache else None
        self.latest = None
        self._top = NO_TICK
        self._held = []

    def __dealloc__(self):
        free(self._ticks)
        free(self._bases)
        free(self._keep)
        free(self._unheld)

    @property
    def tick(self):
        """Newest tick held (-1 before the first snapshot)."""
        return self._top

    def __len__(self):
        return self._n

    cdef inline Py_ssize_t _find(self, long long t):
        cdef Py_ssize_t i = self._n - 1
        while i >= 0:
            if self._ticks[i] <= t:
                return i if self._ticks[i] == t else -1
            i -= 1
        return -1

    def get(self, long long tick):
        cdef Py_ssize_t i = self._find(tick)
        return self._held[i] if i >= 0 else None

    def apply(self, long long tick, long long base, long long ref, long long flags, bytes payload not None):
        """Decode one snapshot; returns the new state, or None if it is not newer than the latest."""
        return self._apply(tick, base, ref, flags, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), payload)

    cdef object _apply(self, long long tick, long long base, long long ref, long long flags, const char *p,
                       Py_ssize_t n, bytes payload):
        """``apply``, with the payload at ``p`` (``payload`` its bytes, or None to make them when needed)."""
        cdef Py_ssize_t i
        cdef long long rt = NO_TICK
        b = r = None
        if self.latest is not None and tick <= self._top:
            return None
        if base != NO_TICK:
            i = self._find(base)
            if i < 0:
                raise DesyncError(f"snapshot needs baseline tick {base}, which this client does not hold")
            b = self._held[i]
            if ref != NO_TICK:
                i = self._find(ref)
                if i < 0:
                    raise DesyncError(f"snapshot needs reference tick {ref}, which this client does not hold")
                r = self._held[i]
                rt = ref
        st = None
        if self._fast is not None:
            st = self._fast._hit_last(tick, base, rt, flags, p, n)
        if st is None:
            if payload is None:
                payload = PyBytes_FromStringAndSize(p, n)
            st = self._decode(tick, base, b, rt, r, flags, payload)
        self._push(tick, base, st)
        self._prune(base - 1 if base != NO_TICK else tick - self.history)
        return st

    cdef object _decode(self, long long tick, long long base, b, long long rt, r, long long flags, bytes payload):
        try:
            if self._fast is not None:
                return self._fast._decode(self.schema, tick, b, base, r, rt, flags, payload)
            if self.cache is not None:
                return self.cache.decode(self.schema, tick, b, r, flags, payload)
            return decode_delta(self.schema, decompress_payload(flags, payload), tick, b, r)
        except PayloadError as e:
            raise DesyncError(str(e)) from None

    cdef int _push(self, long long tick, long long base, st) except -1:
        cdef Py_ssize_t cap
        if self._n == self._cap:
            cap = 2 * self._cap + 4
            self._ticks = <long long *>_grown(self._ticks, cap * sizeof(long long))
            self._bases = <long long *>_grown(self._bases, cap * sizeof(long long))
            self._keep = <char *>_grown(self._keep, cap)
            self._unheld = <long long *>_grown(self._unheld, cap * sizeof(long long))
            self._cap = cap
        self._ticks[self._n] = tick
        self._bases[self._n] = base
        self._held.append(st)  # first: a failed append leaves the arrays and the list in step
        self._n += 1
        self.latest = st
        self._top = st.tick
        return 0

    cdef void _prune(self, long long floor):
        """Keep the ticks from ``floor`` on and the baselines they were decoded from, exactly as
        core.mirror.Mirror._prune does: its keep set also counts baselines it does not hold
        (a full snapshot's -1, a tick pruned already), and when that set is as large as the
        ticks held, it drops nothing."""
        cdef Py_ssize_t i, j, k = 0, n = self._n, kept = 0, other = 0
        cdef long long *ticks = self._ticks
        cdef long long *unheld = self._unheld
        cdef char *keep = self._keep
        if n == 0 or ticks[0] >= floor:
            return
        for i in range(n):
            keep[i] = ticks[i] >= floor
        for i in range(n):
            if ticks[i] >= floor:
                j = self._find(self._bases[i])
                if j >= 0:
                    keep[j] = 1
                else:
                    for k in range(other):
                        if unheld[k] == self._bases[i]:
                            break
                    else:
                        unheld[other] = self._bases[i]
                        other += 1
        for i in range(n):
            kept += keep[i]
        if kept + other == n:
            return
        held = self._held
        k = 0
        for i in range(n):
            if keep[i]:
                if k != i:
                    ticks[k] = ticks[i]
                    self._bases[k] = self._bases[i]
                    held[k] = held[i]
                k += 1
        del held[k:]
        self._n = k

    def ack_bits(self):
        """Bit i set when the mirror holds tick ``self.tick - 1 - i`` (i < ACK_BITS)."""
        cdef unsigned long long bits = 0
        cdef long long d
        cdef Py_ssize_t i
        for i in range(self._n):
            d = self._top - 1 - self._ticks[i]
            if 0 <= d < ACK_BITS:
                bits |= 1ULL << d
        return bits


cdef void *_grown(void *p, size_t size) except NULL:
    cdef void *q = realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


# -- the usual snapshot, read from its bytes -------------------------------------------------------

# -- the sockets a swarm polls ---------------------------------------------------------------------

cdef class ReadySet:
    """See gamesync.sockio.ReadySet (its epoll form): the same interface; ``read_ready`` polls it
    without making the list of owners."""

    cdef int _ep
    cdef list _by_fd  # owner by descriptor (None: none)
    cdef dict _fds  # id(owner) -> its descriptor
    cdef epoll_event *_events
    cdef int _cap

    def __cinit__(self):
        self._ep = -1
        self._events = NULL
        self._cap = 0

    def __init__(self):
        self._ep = epoll_create1(EPOLL_CLOEXEC)
        if self._ep < 0:
            PyErr_SetFromErrno(OSError)
        self._by_fd = []
        self._fds = {}

    def __dealloc__(self):
        free(self._events)
        if self._ep >= 0:
            c_close(self._ep)

    def __len__(self):
        """Sockets registered."""
        return len(self._fds)

    def fileno(self):
        """A descriptor that is readable while any socket in the set is."""
        return self._ep

    def add(self, sock, owner):
        cdef int fd = sock.fileno()
        cdef epoll_event ev
        ev.events = EPOLLIN
        ev.data.fd = fd
        if epoll_ctl(self._ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            PyErr_SetFromErrno(OSError)
        while len(self._by_fd) <= fd:
            self._by_fd.append(None)
        self._by_fd[fd] = owner
        self._fds[id(owner)] = fd

    def remove(self, owner):
        """Stop polling ``owner``'s socket (False: it was not in the set)."""
        fd = self._fds.pop(id(owner), None)
        if fd is None or fd >= len(self._by_fd) or self._by_fd[fd] is not owner:
            return False
        self._by_fd[fd] = None
        epoll_ctl(self._ep, EPOLL_CTL_DEL, fd, NULL)  # (fails when the socket closed first: no matter)
        return True

    cdef int _poll(self) except -1:
        """How many sockets are readable now (their descriptors in ``_events``)."""
        cdef int n, want = len(self._fds) + 1
        if want > self._cap:
            self._events = <epoll_event *>_grown(self._events, want * sizeof(epoll_event))
            self._cap = want
        n = epoll_wait(self._ep, self._events, self._cap, 0)
        if n < 0:
            if errno == EINTR:
                return 0
            PyErr_SetFromErrno(OSError)
        return n

    cdef object _owner(self, int k):
        cdef int fd = self._events[k].data.fd
        return self._by_fd[fd] if fd < len(self._by_fd) else None

    def ready(self):
        """The owners of the sockets that are readable now (never waits)."""
        cdef int k, n = self._poll()
        out = []
        for k in range(n):
            owner = self._owner(k)
            if owner is not None:
                out.append(owner)
        return out

    def close(self):
        if self._ep >= 0:
            c_close(self._ep)
            self._ep = -1


# -- one bot ---------------------------------------------------------------------------------------

cdef object _vis_state = None  # the state the last count of entities held was made from
cdef Py_ssize_t _vis_count = 0


cdef class BotCore:
    """See gamesync.client.botcore.BotCore: the same interface and results."""

    cdef public object rng
    cdef public object fail
    cdef public double next_turn
    cdef public bint measuring
    cdef public object sock
    cdef public object reader
    cdef public Py_ssize_t states, decoded, payload_bytes, visible_sum, visible_samples, inputs
    cdef public list latencies
    cdef object _proto
    cdef Mirror _mirror  # the protocol's mirror, while attached, when it is this module's and the protocol streams
    cdef object _direction
    cdef long long _dx, _dy
    cdef bint _small  # the direction is two ints that msgpack writes in one byte each
    cdef long long _pseq[MAX_PENDING]  # the inputs awaiting their ack: a ring of (seq, time sent)
    cdef double _ptime[MAX_PENDING]
    cdef Py_ssize_t _phead, _plen

    def __init__(self, rng, fail):
        self.rng = rng
        self.fail = fail
        self.direction = (0, 0)
        self.next_turn = 0.0
        self.measuring = False
        self.sock = self.reader = None
        self._proto = None
        self._mirror = None
        self._phead = self._plen = 0
        self.reset_stats()

    def reset_stats(self):
        """Every count from zero."""
        self.states = self.decoded = self.payload_bytes = 0
        self.latencies = []
        self.visible_sum = self.visible_samples = 0
        self.inputs = 0

    @property
    def proto(self):
        return self._proto

    @proto.setter
    def proto(self, p):
        self._proto = p
        self._mirror = None

    @property
    def direction(self):
        return self._direction

    @direction.setter
    def direction(self, d):
        self._direction = d
        self._small = (type(d) is tuple and len(d) == 2 and type(d[0]) is int and type(d[1]) is int
                       and -32 <= d[0] <= 127 and -32 <= d[1] <= 127)
        if self._small:
            self._dx, self._dy = d

    @property
    def pending(self):
        """The inputs sent and not yet acked, oldest first, as ``(seq, time sent)``."""
        cdef Py_ssize_t i, k
        out = []
        for i in range(self._plen):
            k = (self._phead + i) % MAX_PENDING
            out.append((self._pseq[k], self._ptime[k]))
        return out

    def clear_pending(self):
        self._plen = 0

    cdef inline void _pop(self):
        self._phead = (self._phead + 1) % MAX_PENDING
        self._plen -= 1

    def attach(self, sock, reader):
        """Connected: ``sock`` carries the protocol's messages (read by ``reader``, None before the fast path)."""
        self.sock, self.reader = sock, reader
        p = self._proto
        m = p.mirror
        self._mirror = m if type(m) is Mirror and p.stream else None

    def detach(self):
        """The connection is gone: no more inputs."""
        self.sock = None

    # -- states --

    def take(self, list msgs, double now):
        """See gamesync.client.botcore.BotCore.take."""
        return self._take(msgs, now)

    cdef Py_ssize_t _take(self, list msgs, double now) except -9:
        cdef Py_ssize_t i, count = len(msgs)
        cdef Snap f
        cdef Mirror m = self._mirror
        if m is None:
            return self._take_generic(msgs, now)
        for i in range(count):
            msg = msgs[i]
            if type(msg) is not bytes or not read_snapshot(msg, &f):
                return i
            try:
                st = m._apply(f.tick, f.base, f.ref, f.flags, PyBytes_AS_STRING(msg) + f.at, f.size, None)
            except GamesyncError as e:
                self.fail(f"{e.code}: {e.reason}")
                return FAILED
            if st is not None:
                self._acked(f.ack)
                self._on_state(f.ack, PyBytes_GET_SIZE(msg), True, now)
        return count

    cdef Py_ssize_t _take_generic(self, list msgs, double now) except -9:
        """``_take`` through the protocol's ``take_snapshot`` (a mirror of another kind)."""
        cdef Py_ssize_t i, count = len(msgs)
        cdef Snap f
        p = self._proto
        if p is None or not p.stream or p.mirror is None:
            return 0
        for i in range(count):
            msg = msgs[i]
            if type(msg) is not bytes or not read_snapshot(msg, &f):
                return i
            fields = (f.tick, f.base, f.ref, f.ack, f.flags, PyBytes_FromStringAndSize(PyBytes_AS_STRING(msg) + f.at,
                                                                                        f.size))
            try:
                st = p.take_snapshot(fields)
            except GamesyncError as e:
                self.fail(f"{e.code}: {e.reason}")
                return FAILED
            if st is not None:
                self._on_state(f.ack, PyBytes_GET_SIZE(msg), True, now)
        return count

    cdef int _acked(self, long long ack) except -1:
        """gamesync.core.clientproto.ClientProtocol._input_acked."""
        cdef long long cur, seq
        p = self._proto
        cur = p.input_ack
        if ack > cur:
            p.input_ack = ack
            cur = ack
        unacked = p.unacked
        while unacked:
            seq = unacked[0][0]
            if seq > cur:
                break
            unacked.popleft()
        return 0

    def on_state(self, long long input_ack, Py_ssize_t size, bint decoded, double now):
        """See gamesync.client.botcore.BotCore.on_state."""
        self._on_state(input_ack, size, decoded, now)

    cdef int _on_state(self, long long ack, Py_ssize_t size, bint decoded, double now) except -1:
        if self.measuring:
            self.states += 1
            if decoded:
                self.decoded += 1
            self.payload_bytes += size
            if self.states % VISIBLE_EVERY == 1:
                self.visible_sum += self._visible()
                self.visible_samples += 1
            while self._plen and self._pseq[self._phead] <= ack:
                self.latencies.append(now - self._ptime[self._phead])
                self._pop()
        else:
            while self._plen and self._pseq[self._phead] <= ack:
                self._pop()
        return 0

    cdef Py_ssize_t _visible(self) except -1:
        """The protocol's ``visible``: one count per state, whichever bot asks first."""
        global _vis_state, _vis_count
        if self._mirror is None:
            return self._proto.visible
        st = self._mirror.latest
        if st is None:
            return 0
        if st is not _vis_state:
            _vis_count = int(st.alive.sum())
            _vis_state = st
        return _vis_count

    # -- inputs --

    def next_input(self, double now):
        """See gamesync.client.botcore.BotCore.next_input."""
        cdef unsigned char buf[MAX_INPUT]
        cdef Py_ssize_t n = self._next_input(buf, now)
        if n < 0:
            return self._proto.send_input(self._direction)
        return PyBytes_FromStringAndSize(<char *>buf, n)

    cdef Py_ssize_t _next_input(self, unsigned char *o, double now) except -2:
        """The input message into ``o``, its length; -1 when the protocol is to make it (the
        direction turned already): not a streaming protocol, or an unusual direction."""
        cdef long long seq
        cdef Py_ssize_t n
        if now >= self.next_turn:
            self.direction = (self.rng.choice(TURN), self.rng.choice(TURN))
            self.next_turn = now + 1.0
        p = self._proto
        if not (self._small and p.stream):
            return -1
        seq = p.input_seq
        seq += 1
        p.input_seq = seq
        p.unacked.append((seq, self._direction))
        o[0] = 0x93  # [INPUT, seq, [dx, dy]], as protocol.pack_input packs it
        o[1] = 3
        n = 2 + put_int(o + 2, seq)
        o[n] = 0x92
        o[n + 1] = <unsigned char>(self._dx & 0xFF)
        o[n + 2] = <unsigned char>(self._dy & 0xFF)
        return n + 3

    def input_sent(self, double now):
        """See gamesync.client.botcore.BotCore.input_sent."""
        self._input_sent(now)

    cdef int _input_sent(self, double now) except -1:
        cdef long long seq = self._proto.input_seq
        cdef Py_ssize_t k
        if self._plen == MAX_PENDING:
            self._pop()
        k = (self._phead + self._plen) % MAX_PENDING
        self._pseq[k] = seq
        self._ptime[k] = now
        self._plen += 1
        self.inputs += 1
        return 0


# -- the swarm's batched read and send -------------------------------------------------------------

def read_ready(ReadySet sel, clock, Py_ssize_t max_bytes):
    """See gamesync.client.botcore.read_ready."""
    cdef int k, n = sel._poll()
    cdef Py_ssize_t i, got
    cdef BotCore c
    cdef list out = [], fast = [], socks = [], readers = []
    for k in range(n):
        owner = sel._owner(k)
        if owner is None:
            continue
        c = owner.core
        r = c.reader
        if c.sock is None or type(r) is not _WireReader or r.done:
            out.append((owner, None, PUMP, 0.0))
        else:
            fast.append(owner)
            socks.append(c.sock)
            readers.append(r)
    if not fast:
        return out
    results = _recv_frames(socks, readers, max_bytes)
    for i in range(len(fast)):
        owner = fast[i]
        res = results[i]
        r = readers[i]
        got = res[0]
        if got > 0 and res[2] is None and not r.too_big and not r.controls:
            msgs = res[1]
            now = clock()
            got = (<BotCore>owner.core)._take(msgs, now)
            if got != len(msgs):
                out.append((owner, msgs, got, now))
        else:
            out.append((owner, res, ABSORB, 0.0))
    return out


cdef char *_sbuf = NULL  # the frame being sent (grown on demand)
cdef Py_ssize_t _scap = 0


cdef ssize_t _send_masked(int fd, const unsigned char *src, Py_ssize_t n, const unsigned char *key) except? -1:
    """``_shared.send_masked_frame`` with this module's buffer."""
    global _sbuf, _scap
    return send_masked_frame(fd, src, n, key, <unsigned char *>grow(&_sbuf, &_scap, n + 14))


cdef inline Py_ssize_t _frame_size(Py_ssize_t n):
    return n + 4 + (2 if n < 126 else 4 if n < 0x10000 else 10)


def send_slot(list cores, double now):
    """See gamesync.client.botcore.send_slot."""
    cdef list live = [c for c in cores if (<BotCore?>c).sock is not None]
    cdef Py_ssize_t i, n, count = len(live)
    cdef BotCore c
    cdef unsigned char buf[MAX_INPUT]
    cdef const unsigned char *key
    cdef ssize_t sent
    cdef bytes msg
    if count == 0:
        return
    keys = os.urandom(4 * count)
    key = <const unsigned char *>PyBytes_AS_STRING(keys)
    for i in range(count):
        c = live[i]
        n = c._next_input(buf, now)
        if n < 0:
            msg = c._proto.send_input(c._direction)
            n = PyBytes_GET_SIZE(msg)
            sent = _send_masked(c.sock.fileno(), <const unsigned char *>PyBytes_AS_STRING(msg), n, key + 4 * i)
        else:
            sent = _send_masked(c.sock.fileno(), buf, n, key + 4 * i)
        if sent >= _frame_size(n):
            c._input_sent(now)
        elif sent < 0:
            c.fail(f"send failed: {OSError(-sent, os.strerror(-sent))}")
        elif sent > 0:
            c.fail("socket buffer full mid-frame")  # a bot that cannot send 20 bytes is broken
