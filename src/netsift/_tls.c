/*
 * _tls.c: the fast path of netsift.tls's hello parsers, in C.
 *
 * parse_hello_body(data, start, end, kind) walks the ClientHello (kind 1) or
 * ServerHello (kind 2) body in data[start:end] exactly as
 * netsift.tls._client_hello / _server_hello do, and returns the fields they
 * compute as a plain tuple:
 *
 *   kind 1: (legacy_version, cipher_suites, extension_types, extension_data,
 *            sni, alpn, supported_versions, supported_groups,
 *            ec_point_formats, signature_algorithms)
 *   kind 2: (legacy_version, cipher_suite, extension_types, extension_data,
 *            supported_version, alpn)
 *
 * (extension_types is a tuple of ints and extension_data the matching tuple of
 * bytes, both in wire order; given a fifth argument, a class such as
 * netsift.tls.Extension, extension_data holds instances of it instead, made as
 * tls._read_extensions makes them: object.__new__ and the attributes "type"
 * and "data".)  It handles only the clean case: the moment the
 * Python parser would note any anomaly at all (a cut, a length disagreeing
 * with another, trailing bytes, a duplicate extension, an oversized hello) it
 * returns None and the caller runs the Python parser, which stays the
 * specification; a differential test (tests/test_tls_c.py) holds the two
 * together.  The anomaly tuple of a result is therefore always empty.
 *
 * Safety: the whole body is validated before any object is built; every read
 * is bounded by end (itself checked against the buffer's length); no
 * recursion; nothing is allocated from a claimed length, only from lengths
 * already checked against the bytes present.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_HELLO_BYTES (2 + 32 + 1 + 255 + 2 + 65534 + 1 + 255 + 2 + 65535)
#define TLS13_DRAFT_FIRST 0x7F00
#define TLS13_DRAFT_SESSION_ID 0x7F16

#define EXT_SERVER_NAME 0x0000
#define EXT_SUPPORTED_GROUPS 0x000A
#define EXT_EC_POINT_FORMATS 0x000B
#define EXT_SIGNATURE_ALGORITHMS 0x000D
#define EXT_ALPN 0x0010
#define EXT_SUPPORTED_VERSIONS 0x002B

static inline unsigned rd16(const unsigned char *b) { return ((unsigned)b[0] << 8) | b[1]; }

/* One bit per extension type, for the duplicate check.  Only touched with the
 * GIL held and with no Python call in between, and every bit set is cleared
 * before the walk returns. */
static uint64_t seen_types[65536 / 64];

/* Where the extensions we decode lie; len < 0 when absent. */
typedef struct {
    Py_ssize_t off, len;
} Span;

enum { I_SNI, I_GROUPS, I_FORMATS, I_SIGALGS, I_ALPN, I_VERSIONS, N_KNOWN };

static inline int known_index(unsigned etype) {
    switch (etype) {
    case EXT_SERVER_NAME: return I_SNI;
    case EXT_SUPPORTED_GROUPS: return I_GROUPS;
    case EXT_EC_POINT_FORMATS: return I_FORMATS;
    case EXT_SIGNATURE_ALGORITHMS: return I_SIGALGS;
    case EXT_ALPN: return I_ALPN;
    case EXT_SUPPORTED_VERSIONS: return I_VERSIONS;
    default: return -1;
    }
}

static void clear_seen(const unsigned char *d, Py_ssize_t p, Py_ssize_t upto) {
    while (p < upto) {
        const unsigned etype = rd16(d + p);
        seen_types[etype >> 6] &= ~((uint64_t)1 << (etype & 63));
        p += 4 + rd16(d + p + 2);
    }
}

/* tls._read_extensions on d[p:end] without any anomaly: returns 1 and fills
 * first, count and known, or 0 when the Python parser would flag something. */
static int walk_extensions(const unsigned char *d, Py_ssize_t p, Py_ssize_t end,
                           Py_ssize_t *first, Py_ssize_t *count, Span known[N_KNOWN]) {
    for (int i = 0; i < N_KNOWN; i++) known[i].len = -1;
    *first = p;
    *count = 0;
    if (p >= end) return 1; /* no extensions block at all */
    if (end - p < 2) return 0;
    const Py_ssize_t stop = p + 2 + (Py_ssize_t)rd16(d + p);
    if (stop != end) return 0; /* cut short or trailing bytes */
    p += 2;
    *first = p;
    const Py_ssize_t begin = p;
    int ok = 1;
    while (p + 4 <= stop) {
        const unsigned etype = rd16(d + p);
        const Py_ssize_t length = (Py_ssize_t)rd16(d + p + 2);
        const Py_ssize_t nxt = p + 4 + length;
        if (nxt > stop) {
            ok = 0;
            break;
        }
        uint64_t *word = &seen_types[etype >> 6];
        const uint64_t bit = (uint64_t)1 << (etype & 63);
        if (*word & bit) {
            ok = 0; /* a duplicate: left unset here, so the clear below stays exact */
            break;
        }
        *word |= bit;
        const int k = known_index(etype);
        if (k >= 0) {
            known[k].off = p + 4;
            known[k].len = length;
        }
        (*count)++;
        p = nxt;
    }
    clear_seen(d, begin, p);
    return ok && p == stop;
}

/* A u8 (width 1) or u16 length prefix that covers exactly the rest of the extension. */
static inline int exact_vector(const unsigned char *x, Py_ssize_t n, int width) {
    if (n < width) return 0;
    const Py_ssize_t inner = width == 1 ? (Py_ssize_t)x[0] : (Py_ssize_t)rd16(x);
    return width + inner == n;
}

/* tls._sni without anomaly: 1 and the host_name span (len -1 if none), or 0. */
static int check_sni(const unsigned char *x, Py_ssize_t n, Span *host) {
    host->len = -1;
    if (!exact_vector(x, n, 2)) return 0;
    Py_ssize_t q = 2;
    while (q < n) {
        if (q + 3 > n) return 0;
        const Py_ssize_t nxt = q + 3 + (Py_ssize_t)rd16(x + q + 1);
        if (nxt > n) return 0;
        if (x[q] == 0) {
            host->off = q + 3;
            host->len = nxt - (q + 3);
            return 1;
        }
        q = nxt;
    }
    return 1;
}

/* tls._alpn without anomaly: 1 and the number of names, or 0. */
static int check_alpn(const unsigned char *x, Py_ssize_t n, Py_ssize_t *count) {
    *count = 0;
    if (!exact_vector(x, n, 2)) return 0;
    Py_ssize_t q = 2;
    while (q < n) {
        const Py_ssize_t nxt = q + 1 + (Py_ssize_t)x[q];
        if (nxt > n) return 0;
        (*count)++;
        q = nxt;
    }
    return 1;
}

static PyObject *u16_tuple(const unsigned char *b, Py_ssize_t count) {
    PyObject *t = PyTuple_New(count);
    if (!t) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyLong_FromLong((long)rd16(b + 2 * i));
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyObject *u8_tuple(const unsigned char *b, Py_ssize_t count) {
    PyObject *t = PyTuple_New(count);
    if (!t) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyLong_FromLong((long)b[i]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* The u16 list of an exact vector (already checked); () when absent.  A
 * trailing odd byte is ignored, as tls._u16_vector does. */
static PyObject *vector_u16(const unsigned char *d, const Span *s, int width) {
    if (s->len < 0) return PyTuple_New(0);
    return u16_tuple(d + s->off + width, (s->len - width) >> 1);
}

static PyObject *str_type, *str_data, *empty_tuple; /* set at module init */

/* object.__new__(cls) with its "type" and "data" attributes set as
 * object.__setattr__ would (cls was checked to use object's tp_new). */
static PyObject *new_extension(PyTypeObject *cls, PyObject *t, PyObject *b) {
    PyObject *e = PyBaseObject_Type.tp_new(cls, empty_tuple, NULL);
    if (!e) return NULL;
    if (PyObject_GenericSetAttr(e, str_type, t) < 0 || PyObject_GenericSetAttr(e, str_data, b) < 0) {
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

/* (extension_types, extension_data) of the validated block; with cls the
 * second is a tuple of cls instances (see new_extension) instead of bytes. */
static int build_extensions(const unsigned char *d, Py_ssize_t p, Py_ssize_t count,
                            PyTypeObject *cls, PyObject **types, PyObject **datas) {
    *types = PyTuple_New(count);
    *datas = PyTuple_New(count);
    if (!*types || !*datas) goto fail;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Py_ssize_t length = (Py_ssize_t)rd16(d + p + 2);
        PyObject *t = PyLong_FromLong((long)rd16(d + p));
        if (!t) goto fail;
        PyTuple_SET_ITEM(*types, i, t);
        PyObject *b = PyBytes_FromStringAndSize((const char *)d + p + 4, length);
        if (!b) goto fail;
        if (cls) {
            PyObject *e = new_extension(cls, t, b);
            Py_DECREF(b);
            if (!e) goto fail;
            b = e;
        }
        PyTuple_SET_ITEM(*datas, i, b);
        p += 4 + length;
    }
    return 1;
fail:
    Py_CLEAR(*types);
    Py_CLEAR(*datas);
    return 0;
}

static PyObject *alpn_tuple(const unsigned char *d, const Span *s, Py_ssize_t count) {
    PyObject *t = PyTuple_New(count);
    if (!t || count == 0) return t;
    const unsigned char *x = d + s->off;
    Py_ssize_t q = 2;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Py_ssize_t len = (Py_ssize_t)x[q];
        PyObject *b = PyBytes_FromStringAndSize((const char *)x + q + 1, len);
        if (!b) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, b);
        q += 1 + len;
    }
    return t;
}

static PyObject *client_hello(const unsigned char *d, Py_ssize_t p, Py_ssize_t end,
                               PyTypeObject *cls) {
    if (end - p > MAX_HELLO_BYTES || end - p < 2) Py_RETURN_NONE;
    const long version = (long)rd16(d + p);
    p += 34; /* legacy_version, random */
    if (p >= end) Py_RETURN_NONE;
    p += 1 + (Py_ssize_t)d[p]; /* legacy_session_id */
    if (p + 2 > end) Py_RETURN_NONE;
    const Py_ssize_t claimed = (Py_ssize_t)rd16(d + p);
    p += 2;
    if (p + claimed > end || (claimed & 1)) Py_RETURN_NONE;
    const Py_ssize_t ciphers_at = p;
    p += claimed;
    if (p >= end) Py_RETURN_NONE;
    p += 1 + (Py_ssize_t)d[p]; /* legacy_compression_methods */
    if (p > end) Py_RETURN_NONE;
    Py_ssize_t first, count;
    Span known[N_KNOWN];
    if (!walk_extensions(d, p, end, &first, &count, known)) Py_RETURN_NONE;

    /* Check every decoded extension before building anything. */
    Span host = {0, -1};
    Py_ssize_t alpn_count = 0;
    const Span *s = &known[I_SNI];
    if (s->len >= 0 && !check_sni(d + s->off, s->len, &host)) Py_RETURN_NONE;
    s = &known[I_ALPN];
    if (s->len >= 0 && !check_alpn(d + s->off, s->len, &alpn_count)) Py_RETURN_NONE;
    s = &known[I_VERSIONS];
    if (s->len >= 0 && !exact_vector(d + s->off, s->len, 1)) Py_RETURN_NONE;
    s = &known[I_GROUPS];
    if (s->len >= 0 && !exact_vector(d + s->off, s->len, 2)) Py_RETURN_NONE;
    s = &known[I_FORMATS];
    if (s->len >= 0 && !exact_vector(d + s->off, s->len, 1)) Py_RETURN_NONE;
    s = &known[I_SIGALGS];
    if (s->len >= 0 && !exact_vector(d + s->off, s->len, 2)) Py_RETURN_NONE;

    PyObject *ciphers = NULL, *types = NULL, *datas = NULL, *sni = NULL, *alpn = NULL;
    PyObject *versions = NULL, *groups = NULL, *formats = NULL, *sigalgs = NULL;
    PyObject *result = NULL;
    if (!(ciphers = u16_tuple(d + ciphers_at, claimed >> 1))) goto done;
    if (!build_extensions(d, first, count, cls, &types, &datas)) goto done;
    if (host.len >= 0) {
        sni = PyUnicode_DecodeASCII((const char *)d + known[I_SNI].off + host.off, host.len,
                                    "replace");
        if (!sni) goto done;
    } else {
        sni = Py_NewRef(Py_None);
    }
    if (known[I_ALPN].len >= 0) {
        alpn = alpn_tuple(d, &known[I_ALPN], alpn_count);
    } else {
        alpn = PyTuple_New(0);
    }
    if (!alpn) goto done;
    if (!(versions = vector_u16(d, &known[I_VERSIONS], 1))) goto done;
    if (!(groups = vector_u16(d, &known[I_GROUPS], 2))) goto done;
    s = &known[I_FORMATS];
    formats = s->len >= 0 ? u8_tuple(d + s->off + 1, s->len - 1) : PyTuple_New(0);
    if (!formats) goto done;
    if (!(sigalgs = vector_u16(d, &known[I_SIGALGS], 2))) goto done;
    result = Py_BuildValue("(lNNNNNNNNN)", version, ciphers, types, datas, sni, alpn, versions,
                           groups, formats, sigalgs);
    return result; /* "N" stole every reference, even on failure */
done:
    Py_XDECREF(ciphers);
    Py_XDECREF(types);
    Py_XDECREF(datas);
    Py_XDECREF(sni);
    Py_XDECREF(alpn);
    Py_XDECREF(versions);
    Py_XDECREF(groups);
    Py_XDECREF(formats);
    Py_XDECREF(sigalgs);
    return NULL;
}

static PyObject *server_hello(const unsigned char *d, Py_ssize_t p, Py_ssize_t end,
                               PyTypeObject *cls) {
    if (end - p > MAX_HELLO_BYTES || end - p < 2) Py_RETURN_NONE;
    const long version = (long)rd16(d + p);
    const int draft = version >= TLS13_DRAFT_FIRST && version < TLS13_DRAFT_SESSION_ID;
    p += 34; /* legacy_version, random */
    if (p > end) Py_RETURN_NONE;
    if (!draft) {
        if (p >= end) Py_RETURN_NONE;
        p += 1 + (Py_ssize_t)d[p]; /* legacy_session_id_echo */
    }
    if (p + 2 > end) Py_RETURN_NONE;
    const long cipher = (long)rd16(d + p);
    p += 2;
    if (!draft) p += 1; /* legacy_compression_method */
    if (p > end) Py_RETURN_NONE;
    Py_ssize_t first, count;
    Span known[N_KNOWN];
    if (!walk_extensions(d, p, end, &first, &count, known)) Py_RETURN_NONE;
    const Span *sv = &known[I_VERSIONS];
    if (sv->len >= 0 && sv->len != 2) Py_RETURN_NONE;
    Py_ssize_t alpn_count = 0;
    const Span *s = &known[I_ALPN];
    if (s->len >= 0 && !check_alpn(d + s->off, s->len, &alpn_count)) Py_RETURN_NONE;

    PyObject *types = NULL, *datas = NULL, *chosen = NULL, *alpn = NULL;
    if (!build_extensions(d, first, count, cls, &types, &datas)) return NULL;
    if (sv->len >= 0) {
        chosen = PyLong_FromLong((long)rd16(d + sv->off));
    } else {
        chosen = Py_NewRef(Py_None);
    }
    if (!chosen) goto fail;
    alpn = s->len >= 0 ? alpn_tuple(d, s, alpn_count) : PyTuple_New(0);
    if (!alpn) goto fail;
    return Py_BuildValue("(llNNNN)", version, cipher, types, datas, chosen, alpn);
fail:
    Py_XDECREF(types);
    Py_XDECREF(datas);
    Py_XDECREF(chosen);
    return NULL;
}

static PyObject *parse_hello_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "parse_hello_body(data, start, end, kind[, extension_class]) takes 4 or 5 "
                        "arguments");
        return NULL;
    }
    PyTypeObject *cls = NULL;
    if (nargs == 5 && args[4] != Py_None) {
        if (!PyType_Check(args[4]) ||
            ((PyTypeObject *)args[4])->tp_new != PyBaseObject_Type.tp_new) {
            PyErr_SetString(PyExc_TypeError,
                            "parse_hello_body: extension_class must be a class built by "
                            "object.__new__");
            return NULL;
        }
        cls = (PyTypeObject *)args[4];
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_hello_body: data must be bytes");
        return NULL;
    }
    const Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    const Py_ssize_t end = PyLong_AsSsize_t(args[2]);
    if (end == -1 && PyErr_Occurred()) return NULL;
    const long kind = PyLong_AsLong(args[3]);
    if (kind == -1 && PyErr_Occurred()) return NULL;
    const Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (start < 0 || end < start || end > n) Py_RETURN_NONE; /* not ours to judge */
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    if (kind == 1) return client_hello(d, start, end, cls);
    if (kind == 2) return server_hello(d, start, end, cls);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_hello_body", (PyCFunction)(void (*)(void))parse_hello_body, METH_FASTCALL,
     "parse_hello_body(data, start, end, kind, extension_class=None, /) -> tuple | None\n\nThe "
     "fields netsift.tls._client_hello (kind 1) or _server_hello (kind 2) computes for the hello "
     "body data[start:end], or None when that body is not clean (any anomaly) and the Python "
     "parser must decide.  With extension_class the extension data come as instances of it "
     "(attributes type and data) rather than bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tls", "TLS hello parsing fast path, in C (see netsift.tls).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__tls(void) {
    if (!str_type) {
        str_type = PyUnicode_InternFromString("type");
        str_data = PyUnicode_InternFromString("data");
        empty_tuple = PyTuple_New(0);
        if (!str_type || !str_data || !empty_tuple) {
            Py_CLEAR(str_type);
            Py_CLEAR(str_data);
            Py_CLEAR(empty_tuple);
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
