# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native twins of byte layouts and whole-world passes, each giving what its Python original
gives, bit for bit, in passes over the records instead of numpy passes per column:

- ``pack_lists``: ``core.viewpack.pack_lists``, packed record lists (docs/protocol.md 18.3.1);
- ``write_chunks`` and ``count_chunks``: a view room's cell chunks (``core.viewcodec``) and the
  swarm's walk of them (``core.viewmirror``);
- ``encode_rows``: ``core.delta.encode_rows``, a snapshot payload's kept rows;
- ``quantise_rows``: ``core.state.quantise_rows``, a state's rows from the world's columns.

gamesync/native/packing.py picks the path; the tests compare both on random inputs.
"""

from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport rint
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
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


cdef inline uint8_t *_varint(uint8_t *p, int64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = (v & 0x7F) | 0x80
        p += 1
        v >>= 7
    p[0] = v
    return p + 1


cdef inline int _varint_len(int64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline int _width(int64_t k) noexcept nogil:
    return 1 if k <= 0x100 else (2 if k <= 0x10000 else 4)


cdef inline int _need(int64_t r) noexcept nogil:
    if r == 0:
        return 0
    if -0x80 <= r < 0x80:
        return 1
    if -0x8000 <= r < 0x8000:
        return 2
    return 3


cdef inline Py_ssize_t _past(const int64_t[::1] cells, Py_ssize_t i, int64_t c) noexcept nogil:
    """The index after the entries of cell ``c`` that start at ``i`` (entries sorted by cell)."""
    while i < cells.shape[0] and cells[i] == c:
        i += 1
    return i


def write_chunks(Py_ssize_t ncells, const int64_t[::1] kb, const int64_t[::1] kc,
                 const int64_t[::1] l_cell, const int64_t[::1] l_pos,
                 const int64_t[::1] a_cell, const int64_t[::1] a_slot,
                 const int64_t[::1] s_cell, const uint8_t[:, ::1] s_rec,
                 const int64_t[::1] c_cell, const int64_t[::1] c_pos, const int64_t[:, ::1] c_res,
                 const int64_t[::1] caps, int64_t[::1] starts):
    """Every cell's chunk (docs/protocol.md 18.5), cell after cell: the bytes, and each cell's
    start in ``starts`` (ncells + 1 offsets). Each section's entries come sorted by (cell, slot):
    left (positions at base), arrived (slots), spawned (records), changed (positions now, and
    one residual per field in ``c_res``'s rows); ``caps``: each field's widest residual code."""
    cdef Py_ssize_t F = c_res.shape[0], rec = s_rec.shape[1]
    cdef Py_ssize_t nl = l_cell.shape[0], na = a_cell.shape[0], ns = s_cell.shape[0], nc = c_cell.shape[0]
    cdef Py_ssize_t c, i, j, f, li = 0, ai = 0, si = 0, ci = 0, l0, a0, s0, c0
    cdef int64_t size, mask, w, total = 0
    cdef int code, cw
    cdef int64_t *masks = <int64_t *>malloc(max(ncells, 1) * sizeof(int64_t))  # each changed cell's field mask
    cdef int BYTES[4]
    BYTES[0], BYTES[1], BYTES[2], BYTES[3] = 0, 1, 2, 4
    cdef uint8_t *p
    if not masks:
        raise MemoryError()
    try:
        for c in range(ncells):  # sizes
            starts[c] = total
            l0, a0, s0, c0 = li, ai, si, ci
            li, ai, si, ci = _past(l_cell, li, c), _past(a_cell, ai, c), _past(s_cell, si, c), _past(c_cell, ci, c)
            size = 1
            if li > l0:
                size += _varint_len(li - l0) + (li - l0) * _width(kb[c])
            if ai > a0:
                size += _varint_len(ai - a0) + 4 * (ai - a0)
            if si > s0:
                size += _varint_len(si - s0) + rec * (si - s0)
            if ci > c0:
                mask = 0
                w = 0
                for f in range(F):
                    code = 0
                    for j in range(c0, ci):
                        code = max(code, _need(c_res[f, j]))
                    code = min(code, <int>caps[f])
                    mask |= (<int64_t>code) << (2 * f)
                    w += BYTES[code]
                masks[c] = mask
                size += _varint_len(ci - c0) + (ci - c0) * _width(kc[c]) + _varint_len(mask) + (ci - c0) * w
            total += size
        starts[ncells] = total
        if li != nl or ai != na or si != ns or ci != nc:
            raise ValueError("section entries must be sorted by cell, below ncells")
        blob = PyBytes_FromStringAndSize(NULL, total)
        p = <uint8_t *>PyBytes_AS_STRING(blob)
        li = ai = si = ci = 0
        for c in range(ncells):  # bytes
            l0, a0, s0, c0 = li, ai, si, ci
            li, ai, si, ci = _past(l_cell, li, c), _past(a_cell, ai, c), _past(s_cell, si, c), _past(c_cell, ci, c)
            p[0] = (1 if li > l0 else 0) | (2 if ai > a0 else 0) | (4 if si > s0 else 0) | (8 if ci > c0 else 0)
            p += 1
            if li > l0:
                p = _varint(p, li - l0)
                cw = _width(kb[c])
                for i in range(l0, li):
                    p = _write(p, l_pos[i], cw)
            if ai > a0:
                p = _varint(p, ai - a0)
                for i in range(a0, ai):
                    p = _write(p, a_slot[i], 4)
            if si > s0:
                p = _varint(p, si - s0)
                for i in range(s0, si):
                    for j in range(rec):
                        p[j] = s_rec[i, j]
                    p += rec
            if ci > c0:
                p = _varint(p, ci - c0)
                cw = _width(kc[c])
                for i in range(c0, ci):
                    p = _write(p, c_pos[i], cw)
                mask = masks[c]  # the codes the sizes pass chose
                p = _varint(p, mask)
                for f in range(F):
                    code = (mask >> (2 * f)) & 3
                    if code:
                        for i in range(c0, ci):
                            p = _write(p, c_res[f, i], BYTES[code])
    finally:
        free(masks)
    return blob


cdef Py_ssize_t _read_varint(const uint8_t *d, Py_ssize_t n, Py_ssize_t *at, int most) except -1:
    cdef int64_t v = 0
    cdef int j
    cdef uint8_t b
    for j in range(most):
        if at[0] >= n:
            raise ValueError("chunk ends inside a count")
        b = d[at[0]]
        at[0] += 1
        v |= (<int64_t>(b & 0x7F)) << (7 * j)
        if not b & 0x80:
            return v
    raise ValueError(f"varint longer than {most} bytes")


cdef Py_ssize_t _split(const uint8_t *d, Py_ssize_t n, Py_ssize_t at, int64_t *k, int nfields,
                       Py_ssize_t rec_size) except -1:
    """The end of the chunk at ``at`` of a cell of ``k[0]`` members (``k[0]`` becomes the members
    after it): ``core.viewwire.ChunkSplitter.split`` in C."""
    cdef uint8_t flags
    cdef int64_t m, mask, row, cnt
    cdef int i, code
    if at >= n:
        raise ValueError("kept-cells bin ends early")
    flags = d[at]
    at += 1
    if flags == 0:
        return at
    if flags & ~0xF:
        raise ValueError(f"bad chunk flags {flags}")
    if flags & 1:
        cnt = _read_varint(d, n, &at, 5)
        at += cnt * _width(k[0])
        k[0] -= cnt
    if flags & 2:
        cnt = _read_varint(d, n, &at, 5)
        at += 4 * cnt
        k[0] += cnt
    if flags & 4:
        cnt = _read_varint(d, n, &at, 5)
        at += cnt * rec_size
        k[0] += cnt
    if flags & 8:
        m = _read_varint(d, n, &at, 5)
        at += m * (1 if k[0] <= 0x100 else _width(k[0]))
        mask = _read_varint(d, n, &at, 9)
        if 2 * nfields < 63 and mask >> (2 * nfields):
            raise ValueError("field mask names a field the schema does not have")
        row = 0
        for i in range(nfields):
            code = (mask >> (2 * i)) & 3
            row += 0 if code == 0 else (1 if code == 1 else (2 if code == 2 else 4))
        at += m * row
    if k[0] < 0 or at > n:
        raise ValueError("chunk runs past its bin")
    return at


def count_chunks(bytes data, dict counts, list cells, dict table, int nfields, Py_ssize_t rec_size):
    """``core.viewmirror.ViewCounts``' walk over a kept-cells bin: for each held cell of
    ``cells`` (ascending), its chunk's length and members after it, from ``table`` (entry
    ``c << 32 | k``) or split here and added to it; ``counts`` updated in place. Returns
    (misses, offset after the last chunk). ``table`` None: every chunk is split."""
    cdef const uint8_t *d = <const uint8_t *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = len(data), at = 0, end, misses = 0
    cdef int64_t c, k
    for cell in cells:
        c = cell
        k = counts[cell]
        key = (c << 32) | k
        hit = table.get(key) if table is not None else None
        if hit is None:
            misses += 1
            end = _split(d, n, at, &k, nfields, rec_size)
            if table is not None:
                table[key] = (end - at, k)
            at = end
            counts[cell] = k
        else:
            at += <Py_ssize_t>hit[0]
            counts[cell] = hit[1]
    return misses, at


# -- a snapshot's kept rows (core.delta.encode_rows, docs/protocol.md "entity fields") ---------

cdef inline int _fit_width(int64_t lo, int64_t hi) noexcept nogil:
    """``core.delta._fit``'s dtype width for values in [lo, hi] (int32 values always fit 4)."""
    if -0x80 <= lo and hi < 0x80:
        return 1
    if -0x8000 <= lo and hi < 0x8000:
        return 2
    return 4


cdef inline str _signed_code(int w):
    return "<i1" if w == 1 else ("<i2" if w == 2 else "<i4")


cdef inline Py_ssize_t _col(const Py_ssize_t *sel, Py_ssize_t j) noexcept nogil:
    return sel[j] if sel != NULL else j


cdef inline bytes _blank(Py_ssize_t n, uint8_t **p):
    """A new bytes object of ``n`` bytes to fill through ``p`` (nothing else holds it yet)."""
    b = PyBytes_FromStringAndSize(NULL, n)
    p[0] = <uint8_t *>PyBytes_AS_STRING(b)
    return b


cdef list _row(const int32_t[:, :] res, const int32_t[:, :] vals, Py_ssize_t i, const Py_ssize_t *sel,
               Py_ssize_t k, int wide, int64_t sparse_ratio, int64_t outlier_ratio):
    """``core.delta._encode_row`` for row ``i`` over the kept entities ``sel`` (NULL: all ``k``)."""
    cdef Py_ssize_t j, nnz = 0, out8 = 0
    cdef int64_t r, lo = 0, hi = 0, nlo = 0, nhi = 0
    cdef int iw, cw
    cdef uint8_t *a
    cdef uint8_t *b
    cdef uint8_t *c
    for j in range(k):
        r = res[i, _col(sel, j)]
        if j == 0 or r < lo:
            lo = r
        if j == 0 or r > hi:
            hi = r
        if r != 0:
            if nnz == 0 or r < nlo:
                nlo = r
            if nnz == 0 or r > nhi:
                nhi = r
            nnz += 1
            if r < -0x80 or r >= 0x80:
                out8 += 1
    if nnz == 0:
        return [0]  # MODE_SAME
    iw = 2 if k <= 0xFFFF else 4
    idx = "<u2" if iw == 2 else "<u4"
    if nnz * (1 + iw) * sparse_ratio < k:  # MODE_SPARSE: positions and values of the non-zero ones
        cw = _fit_width(nlo, nhi)
        sa = _blank(nnz * iw, &a)
        sb = _blank(nnz * cw, &b)
        for j in range(k):
            r = res[i, _col(sel, j)]
            if r != 0:
                a = _write(a, j, iw)
                b = _write(b, r, cw)
        return [2, idx, sa, _signed_code(cw), sb]
    if out8 == 0:  # MODE_DENSE in int8
        sa = _blank(k, &a)
        for j in range(k):
            a[j] = <uint8_t>res[i, _col(sel, j)]
        return [1, "<i1", sa]
    if out8 * outlier_ratio <= k:  # MODE_DENSE_OUTLIERS: int8, the few that do not fit as int32
        sa = _blank(k, &a)
        sb = _blank(out8 * iw, &b)
        sc = _blank(out8 * 4, &c)
        for j in range(k):
            r = res[i, _col(sel, j)]
            if -0x80 <= r < 0x80:
                a[j] = <uint8_t>r
            else:
                a[j] = 0
                b = _write(b, j, iw)
                c = _write(c, r, 4)
        return [4, sa, idx, sb, sc]
    cw = _fit_width(lo, hi)
    if wide < cw:  # MODE_ABSOLUTE: the values are the smaller
        sa = _blank(k * wide, &a)
        for j in range(k):
            a = _write(a, vals[i, _col(sel, j)], wide)
        return [3, sa]
    sa = _blank(k * cw, &a)  # MODE_DENSE in the narrowest signed type
    for j in range(k):
        a = _write(a, res[i, _col(sel, j)], cw)
    return [1, _signed_code(cw), sa]


cdef list _gap_list(const Py_ssize_t *pos, Py_ssize_t n):
    """``core.delta._gaps``: the first position, then each one's distance from the last."""
    cdef Py_ssize_t j
    cdef int64_t top = 0, prev = 0
    cdef int w
    cdef uint8_t *a
    for j in range(n):
        top = max(top, pos[j] - prev)
        prev = pos[j]
    w = 1 if top < 0x100 else (2 if top < 0x10000 else 4)
    sa = _blank(n * w, &a)
    prev = 0
    for j in range(n):
        a = _write(a, pos[j] - prev, w)
        prev = pos[j]
    return ["<u1" if w == 1 else ("<u2" if w == 2 else "<u4"), sa]


def encode_rows(const int32_t[:, :] res, const int32_t[:, :] vals, list widths, int64_t sparse_ratio,
                int64_t outlier_ratio, int64_t all_changed_ratio):
    """``core.delta.encode_rows`` (the ratios are its module's): (each field's row, the
    ``changed`` list or None), from the kept entities' residuals and values (int32 rows, one
    per field; ``widths`` each field's wire width in bytes)."""
    cdef Py_ssize_t nf = res.shape[0], k = res.shape[1], i, j, n = 0
    cdef Py_ssize_t *pos = NULL
    cdef bint listed = False
    if vals.shape[0] != nf or vals.shape[1] != k or len(widths) != nf:
        raise ValueError("residuals, values and widths disagree in shape")
    if nf > 0 and k > 0:
        pos = <Py_ssize_t *>malloc(k * sizeof(Py_ssize_t))
        if pos == NULL:
            raise MemoryError()
        for j in range(k):
            for i in range(nf):
                if res[i, j] != 0:
                    pos[n] = j
                    n += 1
                    break
        listed = n > 0 and n * all_changed_ratio <= k
    try:
        rows = [_row(res, vals, i, pos if listed else NULL, n if listed else k, widths[i], sparse_ratio,
                     outlier_ratio) for i in range(nf)]
        return rows, (_gap_list(pos, n) if listed else None)
    finally:
        free(pos)


# -- a state's rows (core.state.quantise_rows: Field.quantise_into for every field) ----------

ctypedef fused real_t:
    float
    double

cdef bint _steps_row(const real_t[:] col, int32_t[:, :] mat, Py_ssize_t i, Py_ssize_t n, double lo, double step,
                     double levels) noexcept nogil:
    """A float field's row: whole steps from ``lo``, rounded half to even, clipped to
    [0, levels] (a ``u4`` as its bit pattern). False at a NaN (the Python path decides)."""
    cdef Py_ssize_t j
    cdef double q
    for j in range(n):
        q = rint((<double>col[j] - lo) / step)
        if q != q:
            return False
        q = min(max(q, 0.0), levels)
        mat[i, j] = <int32_t><uint32_t><int64_t>q
    return True


cdef bint _turns_row(const real_t[:] col, int32_t[:, :] mat, Py_ssize_t i, Py_ssize_t n, double per_radian,
                     int64_t mask) noexcept nogil:
    """An angle field's row: turns * 2**bits, rounded half to even, modulo 2**bits. False where
    the value is not finite or past int64 (the Python path decides)."""
    cdef Py_ssize_t j
    cdef double t
    for j in range(n):
        t = rint(<double>col[j] * per_radian)
        if not (-9.2e18 < t < 9.2e18):
            return False
        mat[i, j] = <int32_t><uint32_t>(<int64_t>t & mask)
    return True


cdef bint _real_row(col, int32_t[:, :] mat, Py_ssize_t i, Py_ssize_t n, int kind, double a, double b,
                    int64_t c) except -1:
    cdef const float[:] f32
    cdef const double[:] f64
    if col.dtype.char == "f":
        f32 = col
        return _steps_row(f32, mat, i, n, a, b, <double>c) if kind == 1 else _turns_row(f32, mat, i, n, a, c)
    f64 = col
    return _steps_row(f64, mat, i, n, a, b, <double>c) if kind == 1 else _turns_row(f64, mat, i, n, a, c)


cdef bint _whole_row(col, int32_t[:, :] mat, Py_ssize_t i, Py_ssize_t n) except -1:
    """An int field's row from a column of its wire dtype (1, 2 or 4 bytes, signed or not; a
    ``u4`` above 2**31 - 1 as its bit pattern, as numpy assigns it). False for another dtype."""
    cdef str k = col.dtype.char
    if k not in ("b", "B", "h", "H", "i", "I"):
        return False
    cdef int w = col.dtype.itemsize
    cdef bint signed = k in ("b", "h", "i")
    cdef Py_buffer view
    cdef Py_ssize_t j
    PyObject_GetBuffer(col, &view, PyBUF_STRIDES)
    try:
        for j in range(n):
            mat[i, j] = <int32_t>_read(<const uint8_t *>view.buf + j * view.strides[0], w, signed)
    finally:
        PyBuffer_Release(&view)
    return True


def quantise_rows(list cols, int32_t[:, :] mat, list spec, Py_ssize_t n):
    """``core.state.quantise_rows``: row ``i`` of ``mat`` from ``cols[i]`` (its first ``n``
    values) by ``spec[i]``, a (kind, a, b, c) tuple: (0, ...) a blank row of zeros; (1, lo,
    step, levels) a float field; (2, 2**bits / TAU, 0, 2**bits - 1) an angle; (3, 0, 0, the
    code of its wire dtype's character) an int field, written here when its column has that
    dtype (in the machine's byte order). Returns the rows it could not write (a NaN, a value
    past int64, another dtype or byte order), for the Python path to write; ``mat`` is
    (fields, n), as the Python path needs it."""
    cdef Py_ssize_t i, j
    cdef int kind
    cdef list left = []
    if n < 0 or mat.shape[0] != len(spec) or mat.shape[1] != n or len(cols) != len(spec):
        raise ValueError("columns, matrix and spec disagree in shape")
    for i in range(len(spec)):
        kind, a, b, c = spec[i]
        col = cols[i]
        if kind == 0:
            for j in range(n):
                mat[i, j] = 0
            continue
        if col.ndim != 1 or col.shape[0] < n:
            raise ValueError("a column shorter than the state")
        if kind in (1, 2) and col.dtype.char in "fd" and col.dtype.isnative:
            ok = _real_row(col, mat, i, n, kind, a, b, c)
        elif kind == 3 and ord(col.dtype.char) == c and col.dtype.isnative:
            ok = _whole_row(col, mat, i, n)
        else:
            ok = False
        if not ok:
            left.append(i)
    return left
