# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native twin of gamesync.core.viewpack.pack_lists: packed record lists (docs/protocol.md
18.3.1), the same bytes, in two passes over the records instead of numpy passes per column.

gamesync/native/__init__.py picks the path; the tests compare both on random lists.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc


cdef inline int64_t _read(const uint8_t *p, int w, bint signed) noexcept nogil:
    cdef int64_t v
    if w == 1:
        v = p[0]
        return v - 256 if signed and v >= 128 else v
    if w == 2:
        v = p[0] | (<int64_t>p[1] << 8)
        return v - 65536 if signed and v >= 32768 else v
    v = p[0] | (<int64_t>p[1] << 8) | (<int64_t>p[2] << 16) | (<int64_t>p[3] << 24)
    return v - (<int64_t>1 << 32) if signed and v >= (<int64_t>1 << 31) else v


cdef inline uint8_t *_write(uint8_t *p, int64_t v, int w) noexcept nogil:
    cdef int k
    for k in range(w):
        p[k] = (v >> (8 * k)) & 0xFF
    return p + w


def pack_lists(const uint8_t[:, ::1] rows, const int64_t[::1] counts, list offsets, list widths, list signs):
    """Packed lists of ``counts[i]`` consecutive fixed records each (columns at ``offsets``,
    ``widths`` bytes wide, signed where ``signs``; column 0 the slot, column 1 the id)."""
    cdef Py_ssize_t C = len(offsets), nl = counts.shape[0], m = rows.shape[0]
    cdef Py_ssize_t l, j, i, r0, n, k
    cdef int64_t lo = 0, hi = 0, v, prev, span, c1, c2, c3, size
    cdef int64_t BIG = (<int64_t>1) << 62
    cdef int code, w, nb = (2 * C + 7) // 8
    cdef uint8_t *out
    cdef uint8_t *p
    cdef int64_t *vals = <int64_t *>malloc(max(m, 1) * C * sizeof(int64_t))
    cdef int64_t *los = <int64_t *>malloc(max(nl, 1) * C * sizeof(int64_t))
    cdef int *codes = <int *>malloc(max(nl, 1) * C * sizeof(int))
    cdef int *off = <int *>malloc(max(C, 1) * sizeof(int))
    cdef int *wid = <int *>malloc(max(C, 1) * sizeof(int))
    cdef bint *sig = <bint *>malloc(max(C, 1) * sizeof(bint))
    if not vals or not los or not codes or not off or not wid or not sig:
        free(vals); free(los); free(codes); free(off); free(wid); free(sig)
        raise MemoryError()
    result = []
    try:
        for j in range(C):
            off[j], wid[j], sig[j] = offsets[j], widths[j], signs[j]
        r0 = 0
        for l in range(nl):
            n = counts[l]
            if r0 + n > m:
                raise ValueError("counts must add up to the rows")
            if n == 0:
                result.append(b"")
                continue
            size = nb
            for j in range(C):
                w = wid[j]
                prev = 0
                for i in range(n):
                    v = _read(&rows[r0 + i, 0] + off[j], w, sig[j])
                    if j == 0:
                        v, prev = v - prev, v
                    elif j == 1:
                        v = (v - _read(&rows[r0 + i, 0] + off[0], wid[0], 0)) & 0xFFFFFFFF
                    vals[(r0 + i) * C + j] = v
                    if i == 0 or v < lo:
                        lo = v
                    if i == 0 or v > hi:
                        hi = v
                span = hi - lo
                if span == 0:
                    code, c1 = 0, w
                else:
                    c1 = w + n if span < 0x100 else BIG
                    c2 = w + 2 * n if span < 0x10000 else BIG
                    c3 = w * n
                    code = 1
                    if c2 < c1:
                        code, c1 = 2, c2
                    if c3 < c1:
                        code, c1 = 3, c3
                codes[l * C + j] = code
                los[l * C + j] = lo
                size += c1
            data = PyBytes_FromStringAndSize(NULL, size)
            out = <uint8_t *>PyBytes_AS_STRING(data)
            p = out
            for k in range(nb):
                p[k] = 0
            for j in range(C):
                p[(2 * j) >> 3] |= codes[l * C + j] << ((2 * j) & 7)
            p += nb
            for j in range(C):
                code, w, lo = codes[l * C + j], wid[j], los[l * C + j]
                if code != 3:
                    p = _write(p, lo, w)
                if code == 1:
                    for i in range(n):
                        p = _write(p, vals[(r0 + i) * C + j] - lo, 1)
                elif code == 2:
                    for i in range(n):
                        p = _write(p, vals[(r0 + i) * C + j] - lo, 2)
                elif code == 3:
                    for i in range(n):
                        p = _write(p, vals[(r0 + i) * C + j], w)
            result.append(data)
            r0 += n
        if r0 != m:
            raise ValueError("counts must add up to the rows")
    finally:
        free(vals); free(los); free(codes); free(off); free(wid); free(sig)
    return result
