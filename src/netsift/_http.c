/*
 * _http.c: the fast path of netsift.http._parse_head, in C.
 *
 * parse_head(block, direction) parses an HTTP/1.x head (start line up to the
 * end of the empty line, or any bytes at all) exactly as
 * netsift.http._parse_head does with no extra anomaly codes, and returns the
 * fields it computes as a plain tuple:
 *
 *   (kind, version, method, target, status, reason, headers, content_length)
 *
 * (kind "request" or "response"; strings decoded as latin-1; headers a tuple
 * of (name, value) str pairs in wire order; content_length an int or None).
 * direction is 0 for either, 1 for request only, 2 for response only.  It
 * handles only the clean case: the moment the Python parser would note any
 * anomaly at all (a NUL, a bare LF, a loose start line, obs-fold, a bad field
 * line, a bad or conflicting Content-Length, Transfer-Encoding with
 * Content-Length) or would find no start line, it returns None and the caller
 * runs the Python parser, which stays the specification; a differential test
 * (tests/test_http_c.py) holds the two together.  The anomaly tuple of a
 * result is therefore always empty.
 *
 * Safety: the whole block is validated before any object is built; every read
 * is bounded by the block's length; no recursion; nothing is allocated but
 * the result objects, sized from counts of lines already present.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define CL_NAME "content-length"
#define TE_NAME "transfer-encoding"

static PyObject *str_request, *str_response; /* set at module init */

/* RFC 9110 §5.6.2 tchar, as http._TCHAR. */
static unsigned char tchar[256];

static void init_tchar(void) {
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++) tchar[c] = 1;
    for (int c = 'A'; c <= 'Z'; c++) tchar[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) tchar[c] = 1;
    for (const char *p = extra; *p; p++) tchar[(unsigned char)*p] = 1;
}

static inline int is_sp_ht(unsigned char c) { return c == ' ' || c == '\t'; }

/* str.isspace() of the latin-1 character c (what str.strip() removes). */
static inline int latin1_space(unsigned char c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0;
}

/* name (n bytes) equals the lower-case ASCII word w, ASCII case-insensitively
 * (str.lower() maps no non-ASCII latin-1 character to ASCII). */
static int name_is(const unsigned char *name, Py_ssize_t n, const char *w, Py_ssize_t wn) {
    if (n != wn) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = name[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)w[i]) return 0;
    }
    return 1;
}

/* Start line fields, as offsets into the block. */
typedef struct {
    int request;
    Py_ssize_t m0, m1, t0, t1, v0; /* method, target, version (8 bytes) */
    int status;
    Py_ssize_t r0, r1; /* reason; r0 < 0 when absent */
} Start;

/* http._REQUEST_STRICT on d[s:e]: tchar+ SP [^ \t\r\n]+ SP HTTP/1.DIGIT. */
static int strict_request(const unsigned char *d, Py_ssize_t s, Py_ssize_t e, Start *st) {
    Py_ssize_t p = s;
    while (p < e && tchar[d[p]]) p++;
    if (p == s || p >= e || d[p] != ' ') return 0;
    st->m0 = s;
    st->m1 = p;
    p++;
    const Py_ssize_t t0 = p;
    while (p < e && d[p] != ' ' && d[p] != '\t' && d[p] != '\r' && d[p] != '\n') p++;
    if (p == t0) return 0;
    st->t0 = t0;
    st->t1 = p;
    if (e - p != 9 || d[p] != ' ' || memcmp(d + p + 1, "HTTP/1.", 7) != 0 || d[p + 8] < '0' ||
        d[p + 8] > '9')
        return 0;
    st->v0 = p + 1;
    st->request = 1;
    return 1;
}

/* http._STATUS_STRICT on d[s:e]: HTTP/1.DIGIT SP 3DIGIT [SP *(not HT)]; the
 * reason as http._start_line takes it (after the whitespace, str.strip()ped). */
static int strict_status(const unsigned char *d, Py_ssize_t s, Py_ssize_t e, Start *st) {
    if (e - s < 12 || memcmp(d + s, "HTTP/1.", 7) != 0 || d[s + 7] < '0' || d[s + 7] > '9' ||
        d[s + 8] != ' ')
        return 0;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        const unsigned char c = d[s + i];
        if (c < '0' || c > '9') return 0;
        status = status * 10 + (c - '0');
    }
    Py_ssize_t p = s + 12;
    st->request = 0;
    st->v0 = s;
    st->status = status;
    st->r0 = -1;
    st->r1 = -1;
    if (p == e) return 1;
    if (d[p] != ' ') return 0;
    if (memchr(d + p, '\t', (size_t)(e - p)) != NULL) return 0;
    Py_ssize_t r0 = p, r1 = e;
    while (r0 < r1 && latin1_space(d[r0])) r0++;
    while (r1 > r0 && latin1_space(d[r1 - 1])) r1--;
    st->r0 = r0;
    st->r1 = r1;
    return 1;
}

/* One Content-Length value d[a:b] (already stripped of SP/HT): every
 * comma-separated part 1-19 digits and equal to *number (set by the first
 * part seen when *have is 0).  0 when http._content_length would flag it. */
static int content_length_value(const unsigned char *d, Py_ssize_t a, Py_ssize_t b,
                                 int *have, unsigned long long *number) {
    Py_ssize_t p = a;
    for (;;) {
        Py_ssize_t q = p;
        while (q < b && d[q] != ',') q++;
        Py_ssize_t x = p, y = q;
        while (x < y && is_sp_ht(d[x])) x++;
        while (y > x && is_sp_ht(d[y - 1])) y--;
        if (y == x || y - x > 19) return 0;
        unsigned long long v = 0;
        for (Py_ssize_t i = x; i < y; i++) {
            if (d[i] < '0' || d[i] > '9') return 0;
            v = v * 10 + (unsigned long long)(d[i] - '0'); /* < 10**19 < 2**64 */
        }
        if (*have && v != *number) return 0;
        *have = 1;
        *number = v;
        if (q >= b) return 1;
        p = q + 1;
    }
}

/* The end (exclusive, CR stripped) of the line starting at p, and where the
 * next one starts (-1 when this is the last segment of the block). */
static inline Py_ssize_t line_end(const unsigned char *d, Py_ssize_t p, Py_ssize_t n,
                                  Py_ssize_t *next) {
    const unsigned char *lf = memchr(d + p, '\n', (size_t)(n - p));
    if (lf == NULL) {
        *next = -1;
        return (n > p && d[n - 1] == '\r') ? n - 1 : n;
    }
    const Py_ssize_t q = (Py_ssize_t)(lf - d);
    *next = q + 1;
    return q - 1; /* d[q - 1] == '\r' and q > p: checked by the bare-LF scan */
}

static PyObject *latin1(const unsigned char *d, Py_ssize_t a, Py_ssize_t b) {
    return PyUnicode_DecodeLatin1((const char *)d + a, b - a, NULL);
}

static PyObject *parse(const unsigned char *d, Py_ssize_t n, long direction) {
    if (n == 0) Py_RETURN_NONE;
    /* nul_in_head, bare_lf: every LF must follow a CR */
    if (memchr(d, 0, (size_t)n) != NULL) Py_RETURN_NONE;
    for (const unsigned char *p = d, *end = d + n;
         (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
        if (p == d || p[-1] != '\r') Py_RETURN_NONE;
    }
    Py_ssize_t next;
    const Py_ssize_t e0 = line_end(d, 0, n, &next);
    Start st = {0, 0, 0, 0, 0, 0, 0, -1, -1};
    if (!((direction != 2 && strict_request(d, 0, e0, &st)) ||
          (direction != 1 && strict_status(d, 0, e0, &st))))
        Py_RETURN_NONE; /* loose, or no start line at all */

    /* Field lines: validate and count. */
    Py_ssize_t count = 0, first = next;
    int have_cl = 0, have_te = 0;
    unsigned long long cl = 0;
    for (Py_ssize_t p = next; p >= 0; p = next) {
        const Py_ssize_t e = line_end(d, p, n, &next);
        if (e <= p) break; /* the empty line */
        if (is_sp_ht(d[p])) Py_RETURN_NONE; /* obs_fold */
        const unsigned char *colon = memchr(d + p, ':', (size_t)(e - p));
        if (colon == NULL) Py_RETURN_NONE;
        const Py_ssize_t c = (Py_ssize_t)(colon - d);
        if (c == p || is_sp_ht(d[c - 1]) || d[p] == '\r' || d[p] == 0x0B || d[p] == 0x0C)
            Py_RETURN_NONE; /* bad_header_line */
        if (name_is(d + p, c - p, CL_NAME, (Py_ssize_t)sizeof(CL_NAME) - 1)) {
            Py_ssize_t a = c + 1, b = e;
            while (a < b && is_sp_ht(d[a])) a++;
            while (b > a && is_sp_ht(d[b - 1])) b--;
            if (!content_length_value(d, a, b, &have_cl, &cl)) Py_RETURN_NONE;
        } else if (name_is(d + p, c - p, TE_NAME, (Py_ssize_t)sizeof(TE_NAME) - 1)) {
            have_te = 1;
        }
        count++;
    }
    if (have_cl && have_te) Py_RETURN_NONE; /* te_and_cl */

    PyObject *headers = PyTuple_New(count), *method = NULL, *target = NULL, *status = NULL;
    PyObject *reason = NULL, *version = NULL, *length = NULL;
    if (!headers) return NULL;
    Py_ssize_t i = 0;
    for (Py_ssize_t p = first; i < count; p = next) {
        const Py_ssize_t e = line_end(d, p, n, &next);
        const Py_ssize_t c = (Py_ssize_t)((const unsigned char *)memchr(d + p, ':', (size_t)(e - p)) - d);
        Py_ssize_t a = c + 1, b = e;
        while (a < b && is_sp_ht(d[a])) a++;
        while (b > a && is_sp_ht(d[b - 1])) b--;
        PyObject *name = latin1(d, p, c);
        if (!name) goto fail;
        PyObject *value = latin1(d, a, b);
        if (!value) {
            Py_DECREF(name);
            goto fail;
        }
        PyObject *pair = PyTuple_Pack(2, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (!pair) goto fail;
        PyTuple_SET_ITEM(headers, i, pair);
        i++;
    }
    if (st.request) {
        if (!(version = latin1(d, st.v0, st.v0 + 8))) goto fail;
        if (!(method = latin1(d, st.m0, st.m1))) goto fail;
        if (!(target = latin1(d, st.t0, st.t1))) goto fail;
        status = Py_NewRef(Py_None);
        reason = Py_NewRef(Py_None);
    } else {
        if (!(version = latin1(d, st.v0, st.v0 + 8))) goto fail;
        method = Py_NewRef(Py_None);
        target = Py_NewRef(Py_None);
        if (!(status = PyLong_FromLong(st.status))) goto fail;
        if (st.r0 >= 0) {
            if (!(reason = latin1(d, st.r0, st.r1))) goto fail;
        } else {
            reason = Py_NewRef(Py_None);
        }
    }
    length = have_cl ? PyLong_FromUnsignedLongLong(cl) : Py_NewRef(Py_None);
    if (!length) goto fail;
    return Py_BuildValue("(ONNNNNNN)", st.request ? str_request : str_response, version, method,
                         target, status, reason, headers, length);
    /* "N" stole every reference, even on failure */
fail:
    Py_DECREF(headers);
    Py_XDECREF(version);
    Py_XDECREF(method);
    Py_XDECREF(target);
    Py_XDECREF(status);
    Py_XDECREF(reason);
    return NULL;
}

static PyObject *parse_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_head(block, direction) takes 2 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_head: block must be bytes");
        return NULL;
    }
    const long direction = PyLong_AsLong(args[1]);
    if (direction == -1 && PyErr_Occurred()) return NULL;
    if (direction < 0 || direction > 2) Py_RETURN_NONE; /* not ours to judge */
    return parse((const unsigned char *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                 direction);
}

static PyMethodDef methods[] = {
    {"parse_head", (PyCFunction)(void (*)(void))parse_head, METH_FASTCALL,
     "parse_head(block, direction, /) -> tuple | None\n\nThe fields netsift.http._parse_head "
     "computes for the head block (direction 0 either, 1 request, 2 response) as (kind, "
     "version, method, target, status, reason, headers, content_length), or None when the "
     "head is not clean (any anomaly, or no start line) and the Python parser must decide."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_http", "HTTP/1.x head parsing fast path, in C (see netsift.http).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__http(void) {
    if (!str_request) {
        init_tchar();
        str_request = PyUnicode_InternFromString("request");
        str_response = PyUnicode_InternFromString("response");
        if (!str_request || !str_response) {
            Py_CLEAR(str_request);
            Py_CLEAR(str_response);
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
