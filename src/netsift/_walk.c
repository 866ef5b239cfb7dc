/*
 * _walk.c: find where records start in a pcap or pcapng buffer.
 *
 * Finding record boundaries is the one inherently serial step of reading a
 * capture (each record's length says where the next one starts), so it is the
 * one step netsift does in C; everything after it is vectorized with numpy.
 * Written by hand because no maintained library exposes a record walk without
 * building a Python object per packet.  netsift.walk has a pure-Python
 * fallback with identical results, and a test holds the two together.
 *
 * Both functions stop, without raising, at anything they do not handle
 * (a record that does not fit in the buffer, an impossible length, a pcapng
 * block that is not an Enhanced Packet Block): the Python caller decides.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int host_is_big(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static inline uint32_t rd32(const unsigned char *p, int swap) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

static int get_out(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->itemsize != itemsize) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "output array has the wrong item size");
        return -1;
    }
    return 0;
}

/* walk_pcap(buf, pos, rec_len, big, max_cap, starts: int64[]) -> (count, pos, status)
 * status: 0 = the next record does not fit (or end of buffer), 1 = impossible
 * captured length at pos, 2 = the output array is full. */
static PyObject *walk_pcap(PyObject *self, PyObject *args) {
    Py_buffer in, out;
    Py_ssize_t pos, rec_len;
    int big;
    unsigned long long max_cap;
    PyObject *out_obj;
    if (!PyArg_ParseTuple(args, "y*nnpKO", &in, &pos, &rec_len, &big, &max_cap, &out_obj))
        return NULL;
    if (get_out(out_obj, &out, 8) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)in.buf;
    const Py_ssize_t end = in.len;
    int64_t *starts = (int64_t *)out.buf;
    const Py_ssize_t room = out.len / 8;
    const int swap = big != host_is_big();
    Py_ssize_t n = 0;
    int status = 0;
    if (pos < 0) pos = 0;
    while (pos + rec_len <= end) {
        if (n == room) { status = 2; break; }
        uint32_t cap = rd32(b + pos + 8, swap);
        if ((unsigned long long)cap > max_cap) { status = 1; break; }
        Py_ssize_t next = pos + rec_len + (Py_ssize_t)cap;
        if (next > end) break;
        starts[n++] = pos;
        pos = next;
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&in);
    return Py_BuildValue("nni", n, pos, status);
}

/* walk_epb(buf, pos, big, n_ifaces, starts, caps, origs, ifids, units) -> (count, pos, status)
 * Consumes a run of well-formed Enhanced Packet Blocks.  status: 0 = next block
 * does not fit, 2 = output full, 3 = the block at pos is something else (or an
 * EPB that needs the caller's attention: bad length, unknown interface). */
static PyObject *walk_epb(PyObject *self, PyObject *args) {
    Py_buffer in, o_start, o_cap, o_orig, o_if, o_units;
    Py_ssize_t pos, n_ifaces;
    int big;
    PyObject *a, *c, *d, *e, *f;
    if (!PyArg_ParseTuple(args, "y*npnOOOOO", &in, &pos, &big, &n_ifaces, &a, &c, &d, &e, &f))
        return NULL;
    int ok = get_out(a, &o_start, 8) == 0;
    if (ok && get_out(c, &o_cap, 8) < 0) { PyBuffer_Release(&o_start); ok = 0; }
    if (ok && get_out(d, &o_orig, 8) < 0) { PyBuffer_Release(&o_start); PyBuffer_Release(&o_cap); ok = 0; }
    if (ok && get_out(e, &o_if, 4) < 0) {
        PyBuffer_Release(&o_start); PyBuffer_Release(&o_cap); PyBuffer_Release(&o_orig); ok = 0;
    }
    if (ok && get_out(f, &o_units, 8) < 0) {
        PyBuffer_Release(&o_start); PyBuffer_Release(&o_cap); PyBuffer_Release(&o_orig);
        PyBuffer_Release(&o_if); ok = 0;
    }
    if (!ok) { PyBuffer_Release(&in); return NULL; }
    const unsigned char *b = (const unsigned char *)in.buf;
    const Py_ssize_t end = in.len;
    int64_t *starts = (int64_t *)o_start.buf, *caps = (int64_t *)o_cap.buf;
    int64_t *origs = (int64_t *)o_orig.buf;
    int32_t *ifids = (int32_t *)o_if.buf;
    uint64_t *units = (uint64_t *)o_units.buf;
    Py_ssize_t room = o_start.len / 8;
    if (o_cap.len / 8 < room) room = o_cap.len / 8;
    if (o_orig.len / 8 < room) room = o_orig.len / 8;
    if (o_if.len / 4 < room) room = o_if.len / 4;
    if (o_units.len / 8 < room) room = o_units.len / 8;
    const int swap = big != host_is_big();
    Py_ssize_t n = 0;
    int status = 0;
    if (pos < 0) pos = 0;
    while (pos + 12 <= end) {
        if (n == room) { status = 2; break; }
        uint32_t btype = rd32(b + pos, swap);
        uint32_t blen = rd32(b + pos + 4, swap);
        if (btype != 6 || blen < 32 || (blen & 3) || blen > (16u << 20)) { status = 3; break; }
        if (pos + (Py_ssize_t)blen > end) break;
        if (rd32(b + pos + blen - 4, swap) != blen) { status = 3; break; }
        uint32_t ifid = rd32(b + pos + 8, swap);
        uint32_t cap = rd32(b + pos + 20, swap);
        if (cap > blen - 32 || (Py_ssize_t)ifid >= n_ifaces) { status = 3; break; }
        starts[n] = pos + 28;
        caps[n] = cap;
        origs[n] = rd32(b + pos + 24, swap);
        ifids[n] = (int32_t)ifid;
        units[n] = ((uint64_t)rd32(b + pos + 12, swap) << 32) | rd32(b + pos + 16, swap);
        n++;
        pos += blen;
    }
    PyBuffer_Release(&o_start); PyBuffer_Release(&o_cap); PyBuffer_Release(&o_orig);
    PyBuffer_Release(&o_if); PyBuffer_Release(&o_units); PyBuffer_Release(&in);
    return Py_BuildValue("nni", n, pos, status);
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Find pcap record starts in a buffer."},
    {"walk_epb", walk_epb, METH_VARARGS, "Consume a run of pcapng Enhanced Packet Blocks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walk", "Record-boundary walk for pcap and pcapng buffers.", -1, methods,
};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
