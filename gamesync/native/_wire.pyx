# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native twin of gamesync.wsframe.FrameReader, and the tick's socket reads and writes in one call.

Everything here has a pure-Python counterpart that gives the same results byte for byte
(``gamesync.wsframe.FrameReader``, ``gamesync.sockio.recv_frames``, ``send_parts``,
``send_masked``, ``core.ratelimit.TokenBucket``); gamesync/native/__init__.py picks the path
and documents the interface.
"""

from cpython.bytearray cimport PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.tuple cimport PyTuple_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memmove, memset

from operator import attrgetter

from cpython.object cimport PyTypeObject

from gamesync.native._shared cimport (SAFE_BITS, Snap, frame_head, grow, put_int, read_int, read_snapshot,
                                     send_masked_frame, sock_fd)

import _socket

from gamesync.core.errors import ProtocolViolation, RateLimited
from gamesync.core.inputs import DRAIN_TICKS, INPUT_BACKLOG
from gamesync.core.protocol import NO_EVENTS, input_frame
from gamesync.core.protocol import pack as _pack
from gamesync.wsframe import FrameTooBig


cdef extern from "<sys/uio.h>" nogil:
    cdef struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    cdef struct msghdr:
        void *msg_name
        unsigned int msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t c_recv "recv"(int fd, void *buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    ssize_t c_sendmsg "sendmsg"(int fd, const msghdr *msg, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL

cdef enum:
    MAX_IOV = 16

cdef bytes _NO_EVENTS = NO_EVENTS
cdef PyTypeObject *_SOCK = <PyTypeObject *>_socket.socket  # what ``sock_fd`` reads directly
cdef char *_rbuf = NULL  # the receive buffer, shared by every read (grown on demand)
cdef Py_ssize_t _rcap = 0
cdef char *_sbuf = NULL  # the masked-frame buffer of send_masked
cdef Py_ssize_t _scap = 0


cdef class FrameReader:
    """See gamesync.wsframe.FrameReader: the same interface, the same results."""

    cdef public bint masked
    cdef public Py_ssize_t max_size
    cdef public bint done
    cdef public Py_ssize_t controls
    cdef public object ping
    cdef public Py_ssize_t too_big
    cdef bytes _buf

    def __init__(self, bint masked, Py_ssize_t max_size):
        self.masked = masked
        self.max_size = max_size
        self._buf = b""
        self.done = False
        self.controls = 0
        self.ping = None
        self.too_big = 0

    def feed(self, data):
        """``(messages, rest)``, as the Python reader's ``feed``; FrameTooBig over the limit."""
        cdef bytes b = data if type(data) is bytes else bytes(data)
        if PyBytes_GET_SIZE(self._buf):
            b = self._buf + b
        res = self._parse(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        if self.too_big:
            raise FrameTooBig(self.too_big)
        return res

    def take_ping(self):
        """Payload of the newest unanswered ping."""
        p = self.ping
        self.ping = None
        return p

    cdef tuple _hand_over(self, list out, const unsigned char *buf, Py_ssize_t n):
        self.done = True
        self._buf = b""
        return out, PyBytes_FromStringAndSize(<const char *>buf, n)

    cdef tuple _parse(self, const unsigned char *buf, Py_ssize_t n):
        cdef list out = []
        cdef Py_ssize_t i = 0, h, end, k
        cdef unsigned long long ln
        cdef unsigned char b0, b1, want_mask = 0x80 if self.masked else 0
        cdef bint control
        cdef const unsigned char *m
        cdef unsigned char *p
        cdef bytes payload
        while n - i >= 2:
            b0 = buf[i]
            b1 = buf[i + 1]
            ln = b1 & 0x7F
            control = b0 == 0x89 or b0 == 0x8A  # FIN + ping / pong
            if (b0 != 0x82 and not (control and ln <= 125)) or (b1 & 0x80) != want_mask:
                return self._hand_over(out, buf + i, n - i)
            h = i + 2
            if ln == 126:
                if n - h < 2:
                    break
                ln = (<unsigned long long>buf[h] << 8) | buf[h + 1]
                h += 2
                if ln < 126:  # not the minimal encoding: wsproto refuses it
                    return self._hand_over(out, buf + i, n - i)
            elif ln == 127:
                if n - h < 8:
                    break
                ln = 0
                for k in range(8):
                    ln = (ln << 8) | buf[h + k]
                h += 8
                if ln < 0x10000 or ln >> 63:
                    return self._hand_over(out, buf + i, n - i)
            if ln > <unsigned long long>self.max_size:
                self.too_big = <Py_ssize_t>ln
                self._buf = b""
                return [], None
            if want_mask:
                end = h + 4 + <Py_ssize_t>ln
                if end > n:
                    break
                payload = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>ln)
                p = <unsigned char *>PyBytes_AS_STRING(payload)
                m = buf + h
                h += 4
                for k in range(<Py_ssize_t>ln):
                    p[k] = buf[h + k] ^ m[k & 3]
            else:
                end = h + <Py_ssize_t>ln
                if end > n:
                    break
                payload = PyBytes_FromStringAndSize(<const char *>buf + h, <Py_ssize_t>ln)
            if control:
                self.controls += 1
                if b0 == 0x89:
                    self.ping = payload
            else:
                out.append(payload)
            i = end
        self._buf = PyBytes_FromStringAndSize(<const char *>buf + i, n - i) if i < n else b""
        return out, None


def recv_frames(socks, readers, Py_ssize_t max_bytes):
    """See gamesync.native.recv_frames."""
    global _rbuf, _rcap
    cdef Py_ssize_t i, count = len(socks)
    cdef ssize_t got
    cdef int fd, err
    cdef FrameReader r
    cdef bytes joined
    cdef list out = []
    cdef tuple res
    cdef char *buf = grow(&_rbuf, &_rcap, max_bytes)
    for i in range(count):
        fd = sock_fd(socks[i], _SOCK)
        r = <FrameReader>readers[i]
        got = c_recv(fd, buf, max_bytes, MSG_DONTWAIT)
        if got < 0:
            err = errno
            out.append((-err, [], None))
            continue
        if got == 0:
            out.append((0, [], None))
            continue
        if PyBytes_GET_SIZE(r._buf):
            joined = r._buf + PyBytes_FromStringAndSize(buf, got)
            res = r._parse(<const unsigned char *>PyBytes_AS_STRING(joined), PyBytes_GET_SIZE(joined))
        else:
            res = r._parse(<const unsigned char *>buf, got)
        out.append((got, res[0], res[1]))
    return out


def send_parts(socks, parts):
    """See gamesync.native.send_parts."""
    cdef iovec iov[MAX_IOV]
    cdef msghdr msg
    cdef Py_ssize_t i, j, count = len(socks), nparts
    cdef ssize_t sent
    cdef int err
    cdef list out = []
    cdef bytes part
    for i in range(count):
        seq = parts[i]
        nparts = len(seq)
        if nparts > MAX_IOV:
            seq = [b"".join(seq)]
            nparts = 1
        for j in range(nparts):
            part = seq[j]
            iov[j].iov_base = PyBytes_AS_STRING(part)
            iov[j].iov_len = PyBytes_GET_SIZE(part)
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = iov
        msg.msg_iovlen = nparts
        sent = c_sendmsg(sock_fd(socks[i], _SOCK), &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent < 0:
            err = errno
            out.append(0 if err == EAGAIN or err == EINTR else -err)
        else:
            out.append(sent)
    return out


def send_masked(socks, msgs, bytes keys):
    """See gamesync.native.send_masked."""
    global _sbuf, _scap
    cdef Py_ssize_t i, n, count = len(socks)
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(keys)
    cdef bytes msg
    cdef list out = []
    if PyBytes_GET_SIZE(keys) < 4 * count:
        raise ValueError("need 4 key bytes per message")
    for i in range(count):
        msg = msgs[i]
        n = PyBytes_GET_SIZE(msg)
        out.append(send_masked_frame(socks[i].fileno(), <const unsigned char *>PyBytes_AS_STRING(msg), n, key + 4 * i,
                                     <unsigned char *>grow(&_sbuf, &_scap, n + 14)))
    return out


cdef enum:
    MAX_INTS = 15  # core.inputspec.MAX_INTS
    HEAD = 3  # core.inputspec.HEAD: client, seq, rank


def input_fields(data):
    """See gamesync.core.protocol.input_fields: the same results, read from the bytes."""
    return _input_fields(data)


cdef struct Input:
    long long seq, ack, bits
    bint has_ack
    Py_ssize_t count  # the data's integers
    long long v[MAX_INTS]


cdef bint _parse_input(data, Input *f):
    """The common input message (``protocol.input_fields``) into ``f``: False where that gives None."""
    if type(data) is not bytes:
        return False
    cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i, k, items
    if n < 3 or b[0] < 0x93 or b[0] > 0x95 or b[1] != 3:
        return False
    items = b[0] - 0x90
    i = read_int(b, 2, n, &f.seq)
    if i < 0 or f.seq < 1 or f.seq >> SAFE_BITS:
        return False
    if i >= n or b[i] < 0x90 or b[i] > 0x9F:
        return False
    f.count = b[i] - 0x90
    i += 1
    for k in range(f.count):
        i = read_int(b, i, n, &f.v[k])
        if i < 0:
            return False
    f.has_ack = items >= 4
    f.ack = 0
    f.bits = 0
    if items >= 4:
        i = read_int(b, i, n, &f.ack)
        if i < 0 or f.ack < 0 or f.ack >> SAFE_BITS:
            return False
    if items == 5:
        i = read_int(b, i, n, &f.bits)
        if i < 0 or f.bits < 0 or f.bits >> 32:
            return False
    return i == n


cdef object _input_fields(data):
    cdef Input f
    if not _parse_input(data, &f):
        return None
    return f.seq, [f.v[k] for k in range(f.count)], (f.ack if f.has_ack else None), f.bits


cdef enum:
    NO_TICK = -1


def snapshot_fields(data):
    """See gamesync.core.protocol.snapshot_fields: the same results, read from the bytes
    (``_shared.read_snapshot``, which the bots' native reader uses; here for the tests)."""
    cdef Snap f
    if type(data) is not bytes or not read_snapshot(data, &f):
        return None
    return f.tick, f.base, f.ref, f.ack, f.flags, PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + f.at, f.size)


cdef class TokenBucket:
    """See gamesync.core.ratelimit.TokenBucket: the same interface and the same arithmetic (its
    numbers are C doubles, as Python's floats are), without a Python float made per call."""

    cdef public double rate
    cdef public double burst
    cdef public double tokens
    cdef public double _last

    def __init__(self, double rate, double burst, double now=0.0):
        if rate < 0 or burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._last = now

    cdef inline double _refilled(self, double now):
        """The tokens a refill at ``now`` leaves (nothing changed)."""
        cdef double v
        if now > self._last:
            v = self.tokens + (now - self._last) * self.rate
            return v if v < self.burst else self.burst  # min(burst, v)
        return self.tokens

    cdef inline void _refill(self, double now):
        if now > self._last:
            self.tokens = self._refilled(now)
            self._last = now

    cdef inline bint _can_take(self, double n, double now):
        """Whether ``take(n, now)`` would succeed (nothing changed)."""
        return n <= self._refilled(now)

    cdef inline void _take_sure(self, double n, double now):
        """``take(n, now)`` where ``_can_take`` said yes."""
        self._refill(now)
        self.tokens -= n

    def refill(self, double now):
        """Add what accrued since the last call (time going backwards adds nothing)."""
        self._refill(now)
        return self.tokens

    def take(self, double n, double now):
        """Take ``n`` tokens if there are that many; otherwise take none and return False."""
        if n < 0:
            raise ValueError("cannot take a negative number of tokens")
        self._refill(now)
        if n <= self.tokens:
            self.tokens -= n
            return True
        return False

    def take_oversize(self, double n, double now):
        """Like take, but a cost above ``burst`` passes when the bucket is full and empties it."""
        return self._take_oversize(n, now)

    cdef bint _take_oversize(self, double n, double now):
        self._refill(now)
        cdef double t = self.tokens
        if 0 <= n <= t:
            self.tokens = t - n
            return True
        if n > self.burst and t >= self.burst:
            self.tokens = 0.0
            return True
        return False


cdef enum:
    ACK_BITS = 32  # protocol.ACK_BITS

cdef unsigned long long ACK_MASK = (1ULL << ACK_BITS) - 1


cdef class AckTracker:
    """See gamesync.core.acks.AckTracker: the same interface and the same answers, its ring of
    sent ticks and their baselines kept as two C arrays instead of two lists of Python ints."""

    cdef public long long keep
    cdef public long long lag
    cdef public bint stream
    cdef public long long newest_sent
    cdef public long long acked
    cdef public long long ack_bits
    cdef public long long base
    cdef public long long waits
    cdef long long _n  # the ring's length
    cdef long long *_t
    cdef long long *_b

    def __cinit__(self, long long keep, long long lag, bint stream=False):
        if keep < -1:
            raise ValueError("keep must be >= -1")
        if keep > PY_SSIZE_T_MAX // sizeof(long long) - 2:
            raise MemoryError(f"a ring of {keep} ticks")
        self._n = keep + 2
        self._t = <long long *>malloc(self._n * sizeof(long long))
        self._b = <long long *>malloc(self._n * sizeof(long long))
        if self._t == NULL or self._b == NULL:
            raise MemoryError()

    def __init__(self, long long keep, long long lag, bint stream=False):
        cdef long long i
        self.keep = keep
        self.lag = lag
        self.stream = stream
        for i in range(self._n):
            self._t[i] = NO_TICK
            self._b[i] = NO_TICK
        self.newest_sent = NO_TICK
        self.acked = NO_TICK
        self.ack_bits = 0
        self.base = NO_TICK
        self.waits = 0

    def __dealloc__(self):
        free(self._t)
        free(self._b)

    @property
    def _ticks(self):
        return [self._t[i] for i in range(self._n)]

    @property
    def _bases(self):
        return [self._b[i] for i in range(self._n)]

    cdef inline long long _slot(self, long long tick):
        cdef long long i = tick % self._n
        return i + self._n if i < 0 else i  # Python's modulo

    def on_sent(self, long long tick, long long base):
        """A snapshot for ``tick`` encoded against ``base`` went into the client's stream."""
        self._on_sent(tick, base)

    cdef int _on_sent(self, long long tick, long long base) except -1:
        cdef long long i = self._slot(tick), d, span
        cdef unsigned long long bits = 0
        self._t[i] = tick
        self._b[i] = base
        self.newest_sent = tick
        if self.stream:
            if self.acked != NO_TICK:
                d = tick - self.acked
                if 0 < d <= ACK_BITS:
                    bits = ((<unsigned long long>self.ack_bits << 1) | 1) << (d - 1)
            span = tick - (base - 1 if base != NO_TICK else tick - self.keep)
            if span < 0:
                raise ValueError("negative shift count")
            if span < ACK_BITS:
                bits &= (1ULL << span) - 1
            self.acked = tick
            self.ack_bits = <long long>(bits & ACK_MASK)
        return 0

    cdef inline bint _was_sent(self, long long tick):
        return tick >= 0 and self._t[self._slot(tick)] == tick

    def was_sent(self, long long tick):
        """A snapshot for ``tick`` went to the client within the remembered window."""
        return self._was_sent(tick)

    cdef inline long long _sent_base(self, long long tick):
        cdef long long i = self._slot(tick)
        return self._b[i] if tick >= 0 and self._t[i] == tick else NO_TICK

    def sent_base(self, long long tick):
        """The baseline the snapshot for ``tick`` was encoded against (NO_TICK: unknown)."""
        return self._sent_base(tick)

    def on_ack(self, long long tick, long long bits=0):
        """The client holds snapshot ``tick`` (and those flagged in ``bits``)."""
        self._on_ack(tick, bits)

    cdef int _on_ack(self, long long tick, long long bits) except -1:
        if self._was_sent(tick):
            if tick > self.acked:
                self.acked = tick
                self.ack_bits = bits
            elif tick == self.acked:
                self.ack_bits |= bits
        elif tick > self.newest_sent:
            raise ProtocolViolation(f"ack for tick {tick}, which was never sent")
        return 0

    cdef inline bint _holds(self, long long tick):
        cdef long long d = self.acked - 1 - tick
        if d == -1:
            return True
        return 0 <= d < ACK_BITS and (self.ack_bits >> d) & 1 and self._was_sent(tick)

    def holds(self, long long tick):
        """The client said it holds ``tick``, which we did send it."""
        return self._holds(tick)

    def usable(self, key, long long floor):
        """See ``core.acks.AckTracker.usable``."""
        cdef long long b, r
        b, r = key
        if b == NO_TICK or b < floor or not self._holds(b):
            return False
        return r == NO_TICK or (r >= floor - 1 and self._holds(r)) or r == self._sent_base(b)

    def settle(self, key):
        """Use ``key`` (one ``usable`` said yes to) instead of what ``choose`` picked."""
        b, _ = key
        self.base = b
        return key

    def restart(self):
        """Send a full snapshot this time (``base`` stays)."""
        return NO_TICK, NO_TICK

    def choose(self, long long tick, history):
        """(baseline, reference) for the client's tick-``tick`` snapshot (see
        ``core.acks.AckTracker.choose``)."""
        cdef long long b, r
        if self._pick(tick, history, NULL, 0, 0, &b, &r) and b != NO_TICK:
            self.base = b
        return b, r

    cdef int _pick(self, long long tick, history, const unsigned char *held, long long lo, long long nheld,
                   long long *kb, long long *kr) except -1:
        """``choose``'s pair into ``kb``, ``kr``, ``base`` left as it is (``choose`` stores the
        baseline when it is not NO_TICK). Which ticks the history holds: ``held[t - lo]`` for
        ``lo <= t < lo + nheld`` when ``held`` is given, else ``t in history``."""
        cdef long long acked = self.acked, target, b, r
        kb[0] = kr[0] = NO_TICK
        if acked == NO_TICK:
            return 1
        target = tick - self.lag
        b = target if target < acked and self._holds(target) else acked
        if b < self.base:
            b = self.base
        if not _held(b, history, held, lo, nheld):
            return 1
        r = b - 1
        if not self._holds(r):
            r = self._sent_base(b)
        if r != NO_TICK and not _held(r, history, held, lo, nheld):
            r = NO_TICK
        kb[0] = b
        kr[0] = r
        return 1


cdef inline bint _held(long long t, history, const unsigned char *held, long long lo, long long nheld) except -1:
    if held != NULL:
        return lo <= t < lo + nheld and held[t - lo]
    return t in history


cdef object _by_seq = attrgetter("seq")

cdef struct SeqAt:
    long long seq
    Py_ssize_t at  # arrival order, so that a sort is stable


cdef int _cmp_seq(const void *a, const void *b) noexcept nogil:
    cdef const SeqAt *x = <const SeqAt *>a
    cdef const SeqAt *y = <const SeqAt *>b
    if x.seq != y.seq:
        return -1 if x.seq < y.seq else 1
    return -1 if x.at < y.at else (1 if x.at > y.at else 0)


cdef class InputQueue:
    """See gamesync.core.inputs.InputQueue: the same interface and the same inputs handed out
    (its counters in C; the waiting inputs are the same ``InputFrame`` objects, or, once
    ``expect_ints`` said so, rows of C integers, handed out as ``InputFrame``s by ``take`` and
    as table rows by ``take_batch``)."""

    cdef public list _waiting
    cdef public long long last_applied
    cdef public long long max_per_tick
    cdef public long long max_waiting
    cdef public long long backlog
    cdef public long long drain_ticks
    cdef public long long _standing
    cdef public long long arrived
    cdef readonly Py_ssize_t ints  # integers per input in the C rows (-1: Python objects)
    cdef long long _lo[MAX_INTS]
    cdef long long _hi[MAX_INTS]
    cdef long long *_rows  # per waiting input: its seq, then its integers (arrival order)
    cdef Py_ssize_t _n  # rows waiting
    cdef Py_ssize_t _cap

    def __init__(self, long long max_per_tick=32, long long backlog=INPUT_BACKLOG,
                 long long drain_ticks=DRAIN_TICKS, max_waiting=None):
        if max_per_tick < 1 or backlog < 0 or drain_ticks < 1:
            raise ValueError("max_per_tick >= 1, backlog >= 0 and drain_ticks >= 1")
        self._waiting = []
        self.last_applied = 0
        self.max_per_tick = max_per_tick
        self.max_waiting = 4 * max_per_tick if max_waiting is None else max_waiting
        self.backlog = backlog
        self.drain_ticks = drain_ticks
        self._standing = 0
        self.arrived = 0
        self.ints = -1

    def __dealloc__(self):
        free(self._rows)

    def __len__(self):
        return self._n if self.ints >= 0 else len(self._waiting)

    def expect_ints(self, lo, hi):
        """See ``core.inputs.InputQueue.expect_ints``: from now on inputs wait as C rows."""
        cdef Py_ssize_t k = len(lo), i, cap
        cdef long long l[MAX_INTS]
        cdef long long h[MAX_INTS]
        if not 1 <= k <= MAX_INTS or len(hi) != k:
            raise ValueError(f"1 to {MAX_INTS} integers per input, a low and a high for each")
        for i in range(k):  # every conversion first: nothing changes if one fails
            l[i] = lo[i]
            h[i] = hi[i]
        cap = self.max_waiting + 1 if 0 <= self.max_waiting < PY_SSIZE_T_MAX // 128 else -1
        if cap < 1:
            raise MemoryError(f"{self.max_waiting} inputs waiting")
        self.ints = -1  # (the rows' width changes below: no row is read until it is set again)
        self.clear()
        rows = <long long *>realloc(self._rows, cap * (k + 1) * sizeof(long long))
        if rows == NULL:
            raise MemoryError()
        self._rows = rows
        self._cap = cap
        memcpy(self._lo, l, k * sizeof(long long))
        memcpy(self._hi, h, k * sizeof(long long))
        self.ints = k

    def add(self, long long seq, data):
        """An input received; one already applied is dropped. Raises ``RateLimited`` past
        ``max_waiting``."""
        cdef long long v[MAX_INTS]
        cdef Py_ssize_t i
        if self.ints < 0:
            self._add(seq, data)
            return
        if len(data) != self.ints:
            raise ValueError(f"an input here is {self.ints} integers")
        for i in range(self.ints):
            v[i] = data[i]
        self._add_ints(seq, v)

    cdef int _add(self, long long seq, data) except -1:
        if seq <= self.last_applied:
            return 0
        self._waiting.append(input_frame(seq, data))
        self.arrived += 1
        if len(self._waiting) > self.max_waiting:
            raise RateLimited("too many inputs waiting to be applied")
        return 0

    cdef inline bint _fits(self, const long long *v):
        """Each of the input's integers is within its range (``IntInputs.validate``)."""
        cdef Py_ssize_t i
        for i in range(self.ints):
            if v[i] < self._lo[i] or v[i] > self._hi[i]:
                return False
        return True

    cdef int _add_ints(self, long long seq, const long long *v) except -1:
        """``_add`` for an input held as integers (already checked)."""
        cdef long long *row
        if seq <= self.last_applied:
            return 0
        if self._n >= self._cap:  # only after a flood already raised, for a caller that went on
            raise RateLimited("too many inputs waiting to be applied")
        row = self._rows + self._n * (self.ints + 1)
        row[0] = seq
        memcpy(row + 1, v, self.ints * sizeof(long long))
        self._n += 1
        self.arrived += 1
        if self._n > self.max_waiting:
            raise RateLimited("too many inputs waiting to be applied")
        return 0

    def clear(self):
        """Nothing waiting reaches the game any more."""
        self._waiting = []
        self._n = 0
        self._standing = 0

    cdef Py_ssize_t _count(self, Py_ssize_t count):
        """How many of ``count`` waiting inputs (duplicates out, in seq order) go this tick: the
        backlog rule of ``take``, ``_standing`` kept."""
        cdef Py_ssize_t n = min(self.max_per_tick, max(1, count - self.backlog))
        if n >= count:
            self._standing = 0
        else:
            self._standing += 1
            if self._standing >= self.drain_ticks and n < self.max_per_tick:
                n += 1  # a backlog that stood this long: one input goes early
                self._standing = 0
        return min(n, count)

    def take(self):
        """This tick's inputs, in seq order: the oldest one, and more only past the backlog."""
        cdef list waiting = self._waiting, now
        cdef Py_ssize_t count = len(waiting), n, i
        cdef bint in_order
        if self.ints >= 0:
            n = self._take_rows()
            now = [input_frame(self._rows[i * (self.ints + 1)],
                               tuple([self._rows[i * (self.ints + 1) + 1 + j] for j in range(self.ints)]))
                   for i in range(n)]
            self._drop(n)
            return now
        self.arrived = 0
        if count <= 1:
            self._standing = 0
            if not count:
                return []
            self._waiting = []
            self.last_applied = waiting[0].seq
            return waiting
        in_order = count == 2 and self.last_applied < waiting[0].seq < waiting[1].seq
        if not in_order:  # duplicates out, seq order
            waiting = sorted({f.seq: f for f in waiting if f.seq > self.last_applied}.values(), key=_by_seq)
        n = self._count(len(waiting))
        now = waiting[:n]
        self._waiting = waiting[n:]
        if now:
            self.last_applied = now[len(now) - 1].seq
        return now

    cdef Py_ssize_t _take_rows(self) except -1:
        """``take`` on the C rows: they are put in seq order without duplicates (the last to
        arrive of a seq kept, as ``take``'s dict keeps it), and the number that go this tick
        returned; the caller reads them from the front and then ``_drop``s them."""
        cdef Py_ssize_t count = self._n, n
        cdef long long *r = self._rows
        cdef Py_ssize_t w = self.ints + 1
        self.arrived = 0
        if count <= 1:
            self._standing = 0
            if count:
                self.last_applied = r[0]
            return count
        if not (count == 2 and self.last_applied < r[0] < r[w]):
            count = self._n = self._sort_rows()
        n = self._count(count)
        if n:
            self.last_applied = r[(n - 1) * w]
        return n

    cdef Py_ssize_t _sort_rows(self) except -1:
        """The rows in seq order, one per seq (its last arrival), those applied already out."""
        cdef Py_ssize_t w = self.ints + 1, i, k = 0, m = self._n
        cdef SeqAt *order = <SeqAt *>malloc(m * sizeof(SeqAt))
        cdef long long *rows = <long long *>malloc(m * w * sizeof(long long))
        if order == NULL or rows == NULL:
            free(order)
            free(rows)
            raise MemoryError()
        for i in range(m):
            order[i].seq = self._rows[i * w]
            order[i].at = i
        qsort(order, m, sizeof(SeqAt), _cmp_seq)
        for i in range(m):
            if order[i].seq <= self.last_applied or (i + 1 < m and order[i + 1].seq == order[i].seq):
                continue  # applied already, or an earlier arrival of a seq that came again
            memcpy(rows + k * w, self._rows + order[i].at * w, w * sizeof(long long))
            k += 1
        memcpy(self._rows, rows, k * w * sizeof(long long))
        free(order)
        free(rows)
        return k

    cdef void _drop(self, Py_ssize_t n):
        """The first ``n`` rows went to the game."""
        cdef Py_ssize_t w = self.ints + 1
        if n:
            memmove(self._rows, self._rows + n * w, (self._n - n) * w * sizeof(long long))
            self._n -= n

    cdef Py_ssize_t _take_into(self, long long cid, long long *out) except -1:
        """``take`` written as table rows (client, seq, rank, integers) at ``out``: how many."""
        cdef Py_ssize_t n = self._take_rows(), i, w = self.ints + 1
        for i in range(n):
            out[0] = cid
            out[1] = self._rows[i * w]
            out[2] = i
            memcpy(out + HEAD, self._rows + i * w + 1, self.ints * sizeof(long long))
            out += HEAD + self.ints
        self._drop(n)
        return n


# -- a room's two per-session passes of the tick -------------------------------------------------
#
# ``read_pass`` is ``server.inbox.Inbox.read`` with ``Roster.handle`` and ``send_pass`` is
# ``server.outbound.send_frames``, for the usual session: its socket read and split, its inbound
# budgets charged, it heard, its inputs queued; its frame charged to its byte budget, recorded
# as sent and written with one ``sendmsg``. They reach the session's state directly where it is
# one of the twins above (``TokenBucket``, ``AckTracker``, ``InputQueue``). Anything unusual
# about a session (a hand-over to wsproto, control frames, a pong to write, a budget that says
# no, TLS, permessage-deflate, a partly written frame, a Python twin) goes to the Python code
# for that session, so the rules stay in one place; tests/server runs every room test on both
# paths.


cdef class Link:
    """What the passes reach on every tick for one joined session, looked up once: its objects
    are fixed for its life in the room (its reader is looked up again until the fast path runs).
    ``plain``: no TLS, no permessage-deflate, and its buckets, tracker and queue are the twins
    above (else the passes hand the session to the Python code)."""

    cdef object conn, stream, proto, sock
    cdef FrameReader reader  # None until there is a native fast-path reader
    cdef TokenBucket in_bytes, in_msgs, out_budget
    cdef AckTracker acks
    cdef InputQueue inputs
    cdef bint plain

    def __init__(self, s):
        conn = self.conn = s.conn
        self.stream = conn.stream
        proto = self.proto = s.proto
        self.sock = s.sock
        ib, im, ob, a, q = conn.in_bytes, conn.in_msgs, s.out_budget, proto.acks, proto.inputs
        self.plain = (conn.tls is None and conn.deflate is None and type(ib) is TokenBucket and type(im) is TokenBucket
                      and type(ob) is TokenBucket and type(a) is AckTracker and type(q) is InputQueue)
        if self.plain:
            self.in_bytes, self.in_msgs, self.out_budget, self.acks, self.inputs = ib, im, ob, a, q

    cdef inline FrameReader fast_reader(self):
        """The native reader while the fast path reads this stream, else None."""
        if self.reader is None:
            r = self.stream.reader
            if type(r) is FrameReader:
                self.reader = <FrameReader>r
        return self.reader if self.reader is not None and not self.reader.done else None


cdef inline Link _link(s):
    link = s.link
    if link is None:
        link = s.link = Link(s)
    return <Link>link


cdef long long _inputs_read = 0  # inputs the running read_pass queued (counted into the room's stats)


def read_pass(list ready, double now, take, handle, fail, validate, playing, stats):
    """See above. ``take(s, now, handle, result)`` is the Python path for one session
    (``server.inbox._take``; ``result`` None: it reads the socket itself), ``fail(s, exc)`` what
    ``Roster.handle`` does when a message raises, ``playing`` the state in which inputs count,
    ``stats`` the room's ``RoomStats``, which counts the inputs queued here (the Python path
    counts them on each session: the room's total is the sum of both).
    Every fast socket is read first, in one batch (``recv_frames``), then each session's
    messages are handled: the syscalls together and the sessions' state together keep both
    warm in the caches."""
    global _inputs_read
    cdef list fast = [], links = [], socks = [], readers = [], results
    t = now  # one float object for every session
    cdef Py_ssize_t i
    cdef Link link
    cdef FrameReader r
    for s in ready:
        link = _link(s)
        if link.proto.closing:
            continue
        r = link.fast_reader() if link.plain else None
        if r is not None:
            fast.append(s)
            links.append(link)
            socks.append(link.sock)
            readers.append(r)
        else:
            take(s, t, handle, None)
    if not fast:
        return
    results = recv_frames(socks, readers, (<Link>links[0]).conn.recv_chunk)
    _inputs_read = 0
    try:
        for i in range(len(fast)):
            _read_one(fast[i], <Link>links[i], <tuple>results[i], now, t, take, handle, fail, validate, playing)
    finally:
        stats.inputs_in += _inputs_read


cdef int _read_one(s, Link link, tuple res, double now, t, take, handle, fail, validate, playing) except -1:
    """One session's share of the batched read (``recv_frames``'s result for its socket); ``t``
    is ``now`` as the one Python float every session of the pass gets."""
    cdef long long got = res[0]
    cdef list msgs = res[1]
    cdef Py_ssize_t nm = len(msgs), i = 0
    cdef FrameReader r = link.reader
    stream = link.stream
    if (got <= 0 or res[2] is not None or r.controls or r.too_big or stream.controls
            or stream.pong_due is not None or not link.in_bytes._can_take(got, now)
            or not link.in_msgs._can_take(nm, now)):
        take(s, t, handle, res)  # the Python path: limits, hand-over, errors
        return 0
    link.in_bytes._take_sure(got, now)
    if nm:  # WsConn.absorb charges the message budget only for messages
        link.in_msgs._take_sure(nm, now)
    proto = link.proto
    proto.last_recv = t  # ServerSession.heard
    proto.pinged = False
    if not nm:
        return 0
    cdef InputQueue q = link.inputs
    i = _read_inputs(link, q, msgs, validate, playing, s, fail)
    if 0 <= i < nm:
        handle(s, msgs[i:])
    return 0


cdef Py_ssize_t _read_inputs(Link link, InputQueue q, list msgs, validate, playing, s, fail):
    """The session's inputs, each message read into C (``_parse_input``) and queued. For a game
    with an ``input_spec`` (the queue in integer mode) it is checked against the spec's ranges
    here and queued as a C row, with no Python object made; else the game's ``validate_input``
    checks its data. Returns how many were taken (the rest go to ``Roster.handle``, which
    refuses one out of shape or range as ``IntInputs.validate`` does), or -1 once one failed
    (``fail`` has closed the session)."""
    global _inputs_read
    cdef Input f
    cdef Py_ssize_t i = 0, k
    cdef bint ints = q.ints >= 0
    proto = link.proto
    try:
        for m in msgs:
            if not _parse_input(m, &f) or (ints and (f.count != q.ints or not q._fits(f.v))):
                break
            i += 1
            if proto.state is not playing:  # ServerSession.receive_input
                continue
            _inputs_read += 1  # (ServerSession.inputs_in: into the room's stats at the end)
            if f.has_ack:
                link.acks._on_ack(f.ack, f.bits)
            if ints:
                q._add_ints(f.seq, f.v)
            else:
                q._add(f.seq, validate([f.v[k] for k in range(f.count)]))
    except Exception as e:
        fail(s, e)
        return -1
    return i


cdef struct Frame:
    unsigned char hdr[10]  # the frame's header
    unsigned char ack[9]  # the client's input ack, msgpacked
    int hlen
    int alen
    const char *head  # the shared snapshot bytes around the ack (Outgoing.head, .mid), its events
    const char *mid
    const char *ev
    Py_ssize_t head_len
    Py_ssize_t mid_len
    Py_ssize_t ev_len
    Py_ssize_t total
    ssize_t sent  # bytes written, or minus the errno

cdef char *_fbuf = NULL  # send_pass's frames (grown on demand)
cdef Py_ssize_t _fcap = 0
cdef object _SLOW = object()  # _frame_one: this session goes to the Python path
cdef bint _sending = False  # send_pass is running (it owns _fbuf until it returns)


def send_pass(list plan, double now, slow, stats):
    """See above. ``plan`` holds (session, ``Outgoing``) pairs; ``slow(s, out, now)`` is the Python
    path for one session (``server.outbound.send_one``). As ``send_frames`` does, every frame is
    built first, then all are written, then the outcomes are recorded: the syscalls together
    and the sessions' state together keep both warm in the caches. The frames and the bytes
    written whole are counted into ``stats`` (the room's ``RoomStats``; the Python path counts
    them on each session, and the room's totals are the sum of both)."""
    global _fbuf, _fcap, _sending
    cdef Py_ssize_t k = 0, i
    cdef Frame *fr
    cdef list owners = [], keep = [], socks = []
    cdef Link link
    if _sending:
        raise RuntimeError("send_pass is not reentrant")
    fr = <Frame *>grow(&_fbuf, &_fcap, (len(plan) + 1) * sizeof(Frame))
    _sending = True
    try:
        for s, out in plan:
            if s.outbuf is not None:
                slow(s, out, now)
                continue
            link = _link(s)
            if link.proto.closing:
                continue
            if not link.plain or not isinstance(out, tuple) or PyTuple_GET_SIZE(out) < 8:  # an Outgoing has 8 fields
                slow(s, out, now)
                continue
            ev = _frame_one(s, link, <tuple>out, now, &fr[k])
            if ev is _SLOW:
                slow(s, out, now)
            elif ev is not None:
                owners.append(s)
                socks.append(link.sock)
                keep.append(out)
                keep.append(ev)
                k += 1
    finally:  # what was built is written and recorded, whatever stopped the loop (its state says it was sent)
        try:
            _write_frames(fr, k, socks)
            _record(fr, k, owners, keep, stats)
        finally:
            _sending = False  # only now: _record calls Python while fr still points into _fbuf


cdef int _record(Frame *fr, Py_ssize_t k, list owners, list keep, stats) except -1:
    """The outcome of each write: the room counts the frames and the bytes written whole; a
    frame the socket did not take whole goes to its session (``Session.wrote``)."""
    cdef Py_ssize_t i
    cdef long long whole = 0
    try:
        for i in range(k):
            if fr[i].sent == fr[i].total:
                whole += fr[i].sent
            else:
                owners[i].wrote([PyBytes_FromStringAndSize(<char *>fr[i].hdr, fr[i].hlen), keep[2 * i][5],
                                 PyBytes_FromStringAndSize(<char *>fr[i].ack, fr[i].alen), keep[2 * i][6],
                                 keep[2 * i + 1]], fr[i].total, fr[i].sent)
    finally:
        stats.frames_out += k
        stats.bytes_out += whole
    return 0


cdef int _write_frames(Frame *fr, Py_ssize_t k, list socks) except -1:
    """One non-blocking ``sendmsg`` per frame (to its socket's descriptor as it is now): ``sent``
    as ``send_parts`` reports it."""
    cdef iovec iov[5]
    cdef msghdr msg
    cdef Py_ssize_t i
    cdef ssize_t sent
    memset(&msg, 0, sizeof(msg))
    msg.msg_iov = iov
    msg.msg_iovlen = 5
    for i in range(k):
        iov[0].iov_base = fr[i].hdr
        iov[0].iov_len = fr[i].hlen
        iov[1].iov_base = <void *>fr[i].head
        iov[1].iov_len = fr[i].head_len
        iov[2].iov_base = fr[i].ack
        iov[2].iov_len = fr[i].alen
        iov[3].iov_base = <void *>fr[i].mid
        iov[3].iov_len = fr[i].mid_len
        iov[4].iov_base = <void *>fr[i].ev
        iov[4].iov_len = fr[i].ev_len
        sent = c_sendmsg(sock_fd(socks[i], _SOCK), &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
        if sent < 0:
            sent = 0 if errno == EAGAIN or errno == EINTR else -errno
        fr[i].sent = sent
    return 0


def frame_header(Py_ssize_t n, bint masked=False):
    """``_shared.frame_head``, for the test that holds it to ``wsframe``."""
    cdef unsigned char h[10]
    return PyBytes_FromStringAndSize(<char *>h, frame_head(h, n, masked))


def msgpack_int(long long v):
    """``_shared.put_int``, for the test that holds it to msgpack."""
    cdef unsigned char b[9]
    return PyBytes_FromStringAndSize(<char *>b, put_int(b, v))


cdef object _frame_one(s, Link link, tuple out, double now, Frame *f):
    """``Session.snapshot_parts`` into ``f``: its event bytes when there is a frame to write,
    None when there is none (skipped), ``_SLOW`` (and nothing done) for one the Python path
    must take."""
    cdef bytes head = <bytes?>out[5], mid = <bytes?>out[6], ev
    cdef Py_ssize_t size
    if link.inputs.last_applied < 0:
        return _SLOW
    view = out[7]
    if view is not None and out[1] != s.view.tick:
        s.skipped += 1  # built on a view the client no longer has: the next tick's will do
        return None
    events = s.events
    ev = _pack(events) if events else _NO_EVENTS
    f.alen = put_int(f.ack, link.inputs.last_applied)
    size = PyBytes_GET_SIZE(head) + f.alen + PyBytes_GET_SIZE(mid) + PyBytes_GET_SIZE(ev)
    f.hlen = frame_head(f.hdr, size, False)
    f.total = f.hlen + size
    if not link.out_budget._take_oversize(f.total, now):
        s.skipped += 1  # over the byte budget: skip; events wait for the next frame
        return None
    if events:
        s.events = []
    link.acks._on_sent(out[0], out[1])
    if view is not None:
        s.view.commit(view)
    f.head = PyBytes_AS_STRING(head)
    f.head_len = PyBytes_GET_SIZE(head)
    f.mid = PyBytes_AS_STRING(mid)
    f.mid_len = PyBytes_GET_SIZE(mid)
    f.ev = PyBytes_AS_STRING(ev)
    f.ev_len = PyBytes_GET_SIZE(ev)
    return ev


# -- a tick's inputs as one table (games with an ``input_spec``) ----------------------------------

cdef enum:
    HIST = 16  # take_batch's histograms have at most this many slots (the room's have 5)

cdef long long *_tbuf = NULL  # take_batch's rows (grown on demand)
cdef Py_ssize_t _tcap = 0


def take_batch(sessions, Py_ssize_t k, list arrived, list applied):
    """Every session's inputs of the tick (``InputQueue.take``) as the rows of one table:
    client id, seq, rank, then the ``k`` integers (``core.inputspec.InputBatch``), returned as
    a bytearray of int64s. ``arrived`` and ``applied`` (the room's histograms of inputs added
    and taken per session, the last slot for that many or more) are counted as the room's
    ``_step`` counts them. A queue that is not a native one in integer mode is taken in Python
    (``take``, its frames' data being the validated tuples)."""
    global _tbuf, _tcap
    cdef Py_ssize_t w = HEAD + k, total = 0, n = 0, got, top = len(arrived) - 1, i, j, a
    cdef Py_ssize_t ca[HIST]
    cdef Py_ssize_t cb[HIST]
    cdef InputQueue nq
    cdef long long *row
    if not 0 <= top < HIST or len(applied) != top + 1:
        raise ValueError(f"two histograms of 1 to {HIST} slots")
    memset(ca, 0, sizeof(ca))
    memset(cb, 0, sizeof(cb))
    queues = []
    for cid, s in sessions.items():
        q = s.proto.inputs
        queues.append((cid, q))
        total += len(q)
    row = <long long *>grow(<char **>&_tbuf, &_tcap, (total + 1) * w * sizeof(long long))
    for cid, q in queues:
        if type(q) is InputQueue and (<InputQueue>q).ints == k:
            nq = <InputQueue>q
            a = nq.arrived
            got = nq._take_into(cid, row + n * w)
        else:
            a = q.arrived
            frames = q.take()
            got = len(frames)
            if n + got > total:  # more than it said was waiting: the rows were sized from len(q)
                raise RuntimeError("an input queue handed out more inputs than it held")
            for j in range(got):
                f = frames[j]
                row[(n + j) * w] = cid
                row[(n + j) * w + 1] = f.seq
                row[(n + j) * w + 2] = j
                for i in range(k):
                    row[(n + j) * w + HEAD + i] = f.data[i]
        ca[min(top, a)] += 1
        cb[min(top, got)] += 1
        n += got
    for i in range(top + 1):
        if ca[i]:
            arrived[i] += ca[i]
        if cb[i]:
            applied[i] += cb[i]
    return PyByteArray_FromStringAndSize(<char *>row, n * w * sizeof(long long))


# -- the tick's plan: which payload each session gets (``server.payloads.encode_payloads``) -------

cdef Py_ssize_t _plan_keys(list trackers, long long tick, history, long long lo, long long nheld, Py_ssize_t cap,
                           long long *keys) except -2:
    """``core.plan.plan_payloads`` for a tick within the cap: every tracker's pair into
    ``keys[2i]``, ``keys[2i + 1]``, and when the distinct pairs (the full snapshot aside) are at
    most ``cap``, every tracker's baseline stored and its waits cleared as ``choose`` and
    ``plan_payloads`` do; returns the number of full snapshots. Past the cap it returns -1 and
    changes nothing: the Python plan takes that tick. ``history`` is asked once per tick for
    each tick from ``lo`` on (``nheld`` of them, which must cover every tick it holds)."""
    cdef Py_ssize_t n = len(trackers), i, j, ndist = 0, fulls = 0
    cdef long long b, r
    cdef AckTracker a
    cdef unsigned char *held = <unsigned char *>malloc(nheld if nheld > 0 else 1)
    cdef long long *dist = <long long *>malloc((cap + 1) * 2 * sizeof(long long))
    if held == NULL or dist == NULL or cap < 0:
        free(held)
        free(dist)
        raise MemoryError() if cap >= 0 else ValueError("cap >= 0")
    try:
        for j in range(nheld):
            held[j] = (lo + j) in history
        for i in range(n):
            a = <AckTracker?>trackers[i]
            a._pick(tick, None, held, lo, nheld, &b, &r)
            keys[2 * i] = b
            keys[2 * i + 1] = r
            if b == NO_TICK:  # the full snapshot
                fulls += 1
                continue
            for j in range(ndist):
                if dist[2 * j] == b and dist[2 * j + 1] == r:
                    break
            else:
                if ndist == cap:
                    return -1
                dist[2 * ndist] = b
                dist[2 * ndist + 1] = r
                ndist += 1
        for i in range(n):
            a = <AckTracker>trackers[i]
            if keys[2 * i] != NO_TICK:
                a.base = keys[2 * i]
            a.waits = 0
        return fulls
    finally:
        free(held)
        free(dist)


def plan_keys(list trackers, long long tick, history, long long lo, long long nheld, Py_ssize_t cap):
    """``_plan_keys`` for the tests: every tracker's pair, or None past the cap."""
    cdef long long *keys = <long long *>malloc((len(trackers) + 1) * 2 * sizeof(long long))
    if keys == NULL:
        raise MemoryError()
    try:
        if _plan_keys(trackers, tick, history, lo, nheld, cap, keys) < 0:
            return None
        return [(keys[2 * i], keys[2 * i + 1]) for i in range(len(trackers))]
    finally:
        free(keys)


def plan_pass(sessions, long long tick, history, Py_ssize_t cap, build):
    """``server.payloads.encode_payloads`` for the usual tick: the live sessions (not closing)
    each get the pair their tracker chooses, each distinct pair's ``Outgoing`` is made once by
    ``build(pair)`` (in the order the sessions first want them), and ``(plan, full snapshots)``
    is returned, the plan as (session, ``Outgoing``) pairs. None, with nothing changed, past
    the cap or for a session whose tracker is not the native one: the Python plan takes it."""
    cdef list live = [], trackers = [], outs = [], plan
    cdef Link link
    cdef Py_ssize_t n, i, j, fulls, nout = 0
    cdef long long newest = history.newest, size = history.size
    cdef long long *keys
    cdef long long *seen
    for s in sessions:
        link = _link(s)
        if link.proto.closing:
            continue
        if not link.plain:
            return None
        live.append(s)
        trackers.append(link.acks)
    n = len(live)
    keys = <long long *>malloc((n + 1) * 2 * sizeof(long long))
    seen = <long long *>malloc((n + 1) * 2 * sizeof(long long))
    if keys == NULL or seen == NULL:
        free(keys)
        free(seen)
        raise MemoryError()
    try:
        fulls = _plan_keys(trackers, tick, history, newest - size, size + 1, cap, keys)
        if fulls < 0:
            return None
        plan = []
        for i in range(n):
            for j in range(nout):
                if seen[2 * j] == keys[2 * i] and seen[2 * j + 1] == keys[2 * i + 1]:
                    break
            else:
                outs.append(build((keys[2 * i], keys[2 * i + 1])))
                seen[2 * nout] = keys[2 * i]
                seen[2 * nout + 1] = keys[2 * i + 1]
                j = nout
                nout += 1
            plan.append((live[i], outs[j]))
        return plan, fulls
    finally:
        free(keys)
        free(seen)


def descriptor(sock):
    """``_shared.sock_fd``, for the test that holds it to ``sock.fileno()``."""
    return sock_fd(sock, _SOCK)
