"""Byte-level pieces shared by the native modules (``_wire`` and ``_bots`` cimport them): a
buffer grown on demand, msgpack integers in their shortest form, the usual snapshot message's fields (what
``gamesync.core.protocol.snapshot_fields`` returns, checked the same way), and binary WebSocket
frames (``gamesync.wsframe``'s headers, a masked frame sent)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject_TypeCheck, PyTypeObject
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdlib cimport realloc
from libc.string cimport memcpy


cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef extern from *:
    """
    /* How CPython's socket objects begin (Modules/socketmodule.h, PySocketSockObject: SOCKET_T
       is an int on POSIX); socket.socket subclasses _socket.socket and keeps that layout. */
    typedef struct { PyObject_HEAD int sock_fd; } gs_socket_head;
    """
    ctypedef struct gs_socket_head:
        int sock_fd


cdef inline int sock_fd(sock, PyTypeObject *base) except? -2:
    """``sock.fileno()`` (-1 once closed), read from the object itself when it is a socket
    (``base``: ``_socket.socket``), without the method call; other objects are asked."""
    if PyObject_TypeCheck(sock, base):
        return (<gs_socket_head *><void *>sock).sock_fd
    return sock.fileno()


cdef enum:
    SAFE_BITS = 53  # protocol.MAX_INT is 2**53 - 1
    NO_BASE = -1  # protocol.NO_BASE


cdef struct Snap:
    long long tick, base, ref, ack, flags
    Py_ssize_t at, size  # the payload's offset and length


cdef inline Py_ssize_t read_int(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, long long *v):
    """A msgpack integer at ``b[i]``: its value in ``v`` and the index after it; -1 for
    anything else (or a uint64 past int64, left to the Python path)."""
    cdef unsigned char c
    cdef unsigned long long u = 0
    cdef Py_ssize_t k, w
    if i >= n:
        return -1
    c = b[i]
    if c <= 0x7F:
        v[0] = c
        return i + 1
    if c >= 0xE0:
        v[0] = <signed char>c
        return i + 1
    if 0xCC <= c <= 0xCF:
        w = 1 << (c - 0xCC)
    elif 0xD0 <= c <= 0xD3:
        w = 1 << (c - 0xD0)
    else:
        return -1
    if i + 1 + w > n:
        return -1
    for k in range(w):
        u = (u << 8) | b[i + 1 + k]
    if c <= 0xCF:
        if u >> 63:
            return -1
        v[0] = <long long>u
    elif w == 1:
        v[0] = <signed char>u
    elif w == 2:
        v[0] = <short>u
    elif w == 4:
        v[0] = <int>u
    else:
        v[0] = <long long>u
    return i + 1 + w


cdef inline bint read_snapshot(bytes data, Snap *f):
    """gamesync.core.protocol.snapshot_fields into ``f``: False where it gives None."""
    cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i, size, k, j
    if n < 9 or b[0] != 0x98 or b[1] != 4:
        return False
    i = read_int(b, 2, n, &f.tick)
    if i < 0 or f.tick < 0 or f.tick >> SAFE_BITS:
        return False
    i = read_int(b, i, n, &f.base)
    if i < 0 or not (f.base == NO_BASE or 0 <= f.base < f.tick):
        return False
    i = read_int(b, i, n, &f.ref)
    if i < 0 or not (f.ref == NO_BASE or 0 <= f.ref < f.base):
        return False
    i = read_int(b, i, n, &f.ack)
    if i < 0 or f.ack < 0 or f.ack >> SAFE_BITS:
        return False
    i = read_int(b, i, n, &f.flags)
    if i < 0 or f.flags < 0 or f.flags >> SAFE_BITS:
        return False
    if i >= n or b[i] < 0xC4 or b[i] > 0xC6:
        return False
    k = 1 << (b[i] - 0xC4)
    if i + 1 + k > n:
        return False
    size = 0
    for j in range(k):
        size = (size << 8) | b[i + 1 + j]
    i += 1 + k
    if size > n - i - 1 or b[n - 1] != 0x90 or i + size != n - 1:
        return False
    f.at = i
    f.size = size
    return True


cdef inline Py_ssize_t put_int(unsigned char *o, long long v):
    """``v`` in msgpack's shortest form (as msgpack's Packer writes it) at ``o``; its length."""
    cdef int w, k
    cdef unsigned long long u
    if 0 <= v <= 0x7F or -32 <= v < 0:
        o[0] = <unsigned char>(v & 0xFF)
        return 1
    if v > 0:
        u = <unsigned long long>v
        if u <= 0xFF:
            o[0], w = 0xCC, 1
        elif u <= 0xFFFF:
            o[0], w = 0xCD, 2
        elif u <= 0xFFFFFFFF:
            o[0], w = 0xCE, 4
        else:
            o[0], w = 0xCF, 8
    else:
        u = <unsigned long long>v
        if v >= -0x80:
            o[0], w = 0xD0, 1
        elif v >= -0x8000:
            o[0], w = 0xD1, 2
        elif v >= -0x80000000:
            o[0], w = 0xD2, 4
        else:
            o[0], w = 0xD3, 8
    for k in range(w):
        o[1 + k] = (u >> (8 * (w - 1 - k))) & 0xFF
    return 1 + w


cdef inline Py_ssize_t frame_head(unsigned char *h, Py_ssize_t n, bint masked):
    """The header of a binary frame with an ``n``-byte payload (``wsframe.binary_header``; with
    the mask bit when ``masked``, the key not included) into ``h`` (10 bytes); its length."""
    cdef int k
    cdef unsigned char m = 0x80 if masked else 0
    h[0] = 0x82
    if n < 126:
        h[1] = m | <unsigned char>n
        return 2
    if n < 0x10000:
        h[1] = m | 126
        h[2] = (n >> 8) & 0xFF
        h[3] = n & 0xFF
        return 4
    h[1] = m | 127
    for k in range(8):
        h[2 + k] = (n >> (8 * (7 - k))) & 0xFF
    return 10


cdef inline ssize_t send_masked_frame(int fd, const unsigned char *src, Py_ssize_t n, const unsigned char *key,
                                      unsigned char *dst):
    """``src[:n]`` as one binary frame masked with ``key[:4]``, built in ``dst`` (``n + 14``
    bytes) and sent with one non-blocking ``send``: bytes written, 0 when the socket is full,
    minus the errno of a failed send."""
    cdef Py_ssize_t h = frame_head(dst, n, True), k
    cdef ssize_t sent
    memcpy(dst + h, key, 4)
    for k in range(n):
        dst[h + 4 + k] = src[k] ^ key[k & 3]
    sent = c_send(fd, dst, h + 4 + n, MSG_DONTWAIT | MSG_NOSIGNAL)
    if sent < 0:
        return 0 if errno == EAGAIN or errno == EINTR else -errno
    return sent


cdef inline char *grow(char **buf, Py_ssize_t *cap, Py_ssize_t need) except NULL:
    """``buf[0]``, reallocated to at least ``need`` bytes (``cap[0]``: its size so far)."""
    cdef char *p
    if need <= 0:
        raise ValueError(f"a buffer of {need} bytes")
    if need > cap[0]:
        p = <char *>realloc(buf[0], need)
        if p == NULL:
            raise MemoryError()
        buf[0] = p
        cap[0] = need
    return buf[0]
