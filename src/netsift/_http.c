/*
 * _http.c: the fast paths of netsift.http, in C: its head parser
 * (_parse_head) and its head assembler (HeadAssembler).
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
 * Assembler is netsift.http.HeadAssembler's state machine, step for step (the
 * Python class is the specification, tests/test_http_assembler_c.py the
 * differential test): same states, same buffer, same counters, same Head
 * objects.  A clean head is parsed by parse() above and its Head built here
 * as the dataclass's __init__ builds it; everything rare is handed to the
 * Python functions that define it (netsift.http._parse_head for unclean,
 * truncated and cut heads, _start_line for start lines that are not strict,
 * _REQUEST_PARTIAL and _STATUS_PARTIAL for start lines still arriving).  They
 * and the bounds (MAX_HEAD_BYTES, MAX_CHUNK_LINE_BYTES,
 * MAX_LEADING_EMPTY_BYTES) are read from netsift.http at the first
 * construction (http imports this module, so not at import).  Like
 * _parse_head, it parses in C only while http._c_parse_head is this module's
 * parse_head: switched off or replaced (as tests do), every head goes through
 * _parse_head.  What the Python class computes on the way that shows in its
 * results is computed here too: the Head's cached ``_by_name`` look-up table,
 * which HeadAssembler._after_head builds through Head.transfer_encoding, is
 * built and stored the same way and in the same cases.
 *
 * Where it differs, on purpose: counters and offsets are 64-bit (gap() and
 * skip() raise OverflowError for a count that would take one past 2**64 - 1,
 * where Python would grow its ints); gap(), skip() and max_head_bytes take integers only
 * (TypeError for a float, which the Python class would accept and carry
 * along); only request_of is settable; a method called again while a feed is
 * running (from request_of) raises RuntimeError instead of corrupting the
 * buffer; it cannot be pickled.
 *
 * Safety: the whole block is validated before any object is built; every read
 * is bounded by the block's or the buffer's length; no recursion; the
 * assembler's buffer holds at most max_head_bytes plus one chunk, as the
 * Python class's does; nothing else is allocated but result objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
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

/* ------------------------------------------------------------------ Assembler */

/* The states, as netsift.http's constants; state_str holds their names. */
enum { S_HEAD, S_BODY, S_CHUNK_SIZE, S_CHUNK_DATA, S_TRAILERS, S_UNTIL_CLOSE, S_DONE, S_LOST,
       S_COUNT };
static const char *const state_names[S_COUNT] = {
    "head", "body", "chunk_size", "chunk_data", "trailers", "until_close", "done", "lost",
};
static PyObject *state_str[S_COUNT];

#define H2_PREFACE "PRI * HTTP/2.0"
#define H2_PREFACE_LEN 14

/* Strings used below (interned at module init). */
static PyObject *str_HEAD, *str_CONNECT, *str_te, *str_cl, *str_by_name, *str_lower,
    *str_headers, *str_anomalies, *str_kind, *str_status, *str_content_length,
    *str_c_parse_head, *code_bad_start_line, *code_bad_chunk, *code_head_too_long,
    *code_truncated_head, *code_unsupported_te, *extra_head_too_long, *extra_truncated_head,
    *valid_directions, *empty_tuple, *small_zero, *small_one, *small_sixteen;

/* From netsift.http and collections, bound at the first construction (bind()). */
static PyObject *py_http_dict;       /* netsift.http's namespace (for _c_parse_head) */
static PyObject *py_Head;            /* netsift.http.Head */
static PyObject *py_parse_head;      /* netsift.http._parse_head */
static PyObject *py_start_line;      /* netsift.http._start_line */
static PyObject *py_request_partial; /* netsift.http._REQUEST_PARTIAL.match */
static PyObject *py_status_partial;  /* netsift.http._STATUS_PARTIAL.match */
static PyObject *py_Counter;         /* collections.Counter */
static PyObject *py_max_head_default; /* netsift.http.MAX_HEAD_BYTES */
static Py_ssize_t max_chunk_line = -1, max_leading_empty = -1, max_head_default = -1;
/* Head's fields in __init__ order; head_plain when Head is the plain frozen
 * dataclass this was written for (object.__new__, these fields, no
 * __post_init__), so that a Head can be built as its __init__ builds one:
 * object.__setattr__ of each field in order.  Otherwise Head(...) is called. */
#define HEAD_NFIELDS 11
static const char *const head_field_names[HEAD_NFIELDS] = {
    "kind", "version", "method", "target", "status", "reason", "headers", "content_length",
    "anomalies", "offset", "length",
};
static PyObject *head_fields[HEAD_NFIELDS];
static int head_plain;

static PyObject *module_attr(PyObject *mod, const char *name) {
    return PyObject_GetAttrString(mod, name);
}

static Py_ssize_t module_size(PyObject *mod, const char *name) {
    PyObject *v = module_attr(mod, name);
    if (!v) return -1;
    const Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

static int bind(void) {
    if (py_Head) return 0;
    PyObject *http = PyImport_ImportModule("netsift.http");
    if (!http) return -1;
    PyObject *collections = NULL, *dataclasses = NULL, *fields = NULL, *rp = NULL, *sp = NULL;
    PyObject *head = NULL, *parse_head = NULL, *start_line = NULL, *rpm = NULL, *spm = NULL;
    PyObject *counter = NULL, *dict = NULL, *max_head = NULL;
    int ok = -1;
    if (!(dict = PyObject_GetAttrString(http, "__dict__"))) goto done;
    if (!(head = module_attr(http, "Head"))) goto done;
    if (!(parse_head = module_attr(http, "_parse_head"))) goto done;
    if (!(start_line = module_attr(http, "_start_line"))) goto done;
    if (!(rp = module_attr(http, "_REQUEST_PARTIAL")) || !(rpm = module_attr(rp, "match")))
        goto done;
    if (!(sp = module_attr(http, "_STATUS_PARTIAL")) || !(spm = module_attr(sp, "match")))
        goto done;
    const Py_ssize_t chunk_line = module_size(http, "MAX_CHUNK_LINE_BYTES");
    const Py_ssize_t leading_empty = module_size(http, "MAX_LEADING_EMPTY_BYTES");
    const Py_ssize_t head_default = module_size(http, "MAX_HEAD_BYTES");
    if (chunk_line < 0 || leading_empty < 0 || head_default < 16) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "netsift.http's bounds are negative");
        goto done;
    }
    if (!(max_head = PyLong_FromSsize_t(head_default))) goto done;
    if (!(collections = PyImport_ImportModule("collections"))) goto done;
    if (!(counter = module_attr(collections, "Counter"))) goto done;
    if (!PyType_Check(head)) {
        PyErr_SetString(PyExc_TypeError, "netsift.http.Head is not a class");
        goto done;
    }
    /* head_plain: Head's fields are the ones above, it has no __post_init__ and
     * object's __new__ */
    if (!(dataclasses = PyImport_ImportModule("dataclasses"))) goto done;
    if (!(fields = PyObject_CallMethod(dataclasses, "fields", "O", head))) goto done;
    int plain = PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == HEAD_NFIELDS &&
                ((PyTypeObject *)head)->tp_new == PyBaseObject_Type.tp_new &&
                !PyObject_HasAttrString(head, "__post_init__");
    for (Py_ssize_t i = 0; plain && i < HEAD_NFIELDS; i++) {
        PyObject *name = PyObject_GetAttrString(PyTuple_GET_ITEM(fields, i), "name");
        if (!name) goto done;
        plain = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, head_field_names[i]) == 0;
        Py_DECREF(name);
    }
    head_plain = plain;
    max_chunk_line = chunk_line;
    max_leading_empty = leading_empty;
    max_head_default = head_default;
    py_max_head_default = max_head;
    py_http_dict = dict;
    py_Head = head;
    py_parse_head = parse_head;
    py_start_line = start_line;
    py_request_partial = rpm;
    py_status_partial = spm;
    py_Counter = counter;
    dict = head = parse_head = start_line = rpm = spm = counter = max_head = NULL;
    ok = 0;
done:
    Py_DECREF(http);
    Py_XDECREF(collections);
    Py_XDECREF(dataclasses);
    Py_XDECREF(fields);
    Py_XDECREF(rp);
    Py_XDECREF(sp);
    Py_XDECREF(dict);
    Py_XDECREF(head);
    Py_XDECREF(parse_head);
    Py_XDECREF(start_line);
    Py_XDECREF(rpm);
    Py_XDECREF(spm);
    Py_XDECREF(counter);
    Py_XDECREF(max_head);
    return ok;
}

typedef struct {
    PyObject_HEAD
    PyObject *direction;      /* as given: None, "request" or "response" */
    PyObject *max_head_obj;   /* as given */
    PyObject *request_of;     /* None or a callable */
    PyObject *anomalies;      /* a collections.Counter */
    int dir;                  /* 0 either, 1 request, 2 response (parse()'s codes) */
    int state;
    int busy;                 /* inside feed/close/expect_no_body */
    Py_ssize_t limit;         /* max_head_bytes, at most PY_SSIZE_T_MAX */
    unsigned char *buf;       /* the buffer: buf[start:start + len] of cap bytes */
    Py_ssize_t start, len, cap;
    Py_ssize_t scanned;       /* HeadAssembler._scanned */
    unsigned long long offset, body_bytes, discarded_bytes, remaining;
} Assembler;

enum { DROP_NONE, DROP_DISCARD, DROP_BODY };

static inline unsigned char *bufp(Assembler *a) { return a->buf + a->start; }

/* HeadAssembler._drop */
static void drop(Assembler *a, Py_ssize_t n, int kind) {
    if (n > a->len) n = a->len;
    a->start += n;
    a->len -= n;
    a->offset += (unsigned long long)n;
    a->scanned = 0;
    if (kind == DROP_BODY)
        a->body_bytes += (unsigned long long)n;
    else if (kind == DROP_DISCARD)
        a->discarded_bytes += (unsigned long long)n;
    if (a->len == 0) {
        a->start = 0;
        if (a->cap > 16384) { /* do not keep a large buffer for an idle direction */
            PyMem_Free(a->buf);
            a->buf = NULL;
            a->cap = 0;
        }
    }
}

/* HeadAssembler._discard_input */
static void discard_input(Assembler *a, unsigned long long n, int body) {
    if (body)
        a->body_bytes += n;
    else
        a->discarded_bytes += n;
    a->offset += n;
}

static int buf_append(Assembler *a, const unsigned char *d, Py_ssize_t n) {
    if (n > PY_SSIZE_T_MAX - a->len) {
        PyErr_NoMemory();
        return -1;
    }
    if (a->cap - a->start - a->len < n) {
        if (a->start) {
            memmove(a->buf, a->buf + a->start, (size_t)a->len);
            a->start = 0;
        }
        if (a->cap - a->len < n) {
            Py_ssize_t cap = a->cap ? a->cap : 256;
            while (cap - a->len < n) cap = cap > PY_SSIZE_T_MAX / 2 ? PY_SSIZE_T_MAX : cap * 2;
            unsigned char *nb = PyMem_Realloc(a->buf, (size_t)cap);
            if (!nb) {
                PyErr_NoMemory();
                return -1;
            }
            a->buf = nb;
            a->cap = cap;
        }
    }
    memcpy(a->buf + a->start + a->len, d, (size_t)n);
    a->len += n;
    return 0;
}

/* anomalies[code] += 1 (a Counter: a missing key counts 0) */
static int count_code(Assembler *a, PyObject *code) {
    if (!a->anomalies) return 0; /* cleared by the garbage collector */
    PyObject *old = PyDict_GetItemWithError(a->anomalies, code), *new;
    if (old) {
        new = PyNumber_Add(old, small_one);
    } else {
        if (PyErr_Occurred()) return -1;
        new = PyLong_FromLong(1);
    }
    if (!new) return -1;
    const int r = PyDict_SetItem(a->anomalies, code, new);
    Py_DECREF(new);
    return r;
}

/* anomalies.update(codes) for an iterable of codes */
static int count_all(Assembler *a, PyObject *codes) {
    PyObject *it = PyObject_GetIter(codes), *code;
    if (!it) return -1;
    while ((code = PyIter_Next(it)) != NULL) {
        const int r = count_code(a, code);
        Py_DECREF(code);
        if (r < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* HeadAssembler._lose */
static int lose(Assembler *a, PyObject *code) {
    if (code && count_code(a, code) < 0) return -1;
    drop(a, a->len, DROP_DISCARD);
    a->state = S_LOST;
    return 0;
}

/* HeadAssembler._skip_empty_lines */
static Py_ssize_t skip_empty_lines(Assembler *a) {
    const unsigned char *d = bufp(a);
    Py_ssize_t i = 0;
    while (i < a->len && i < max_leading_empty && (d[i] == '\r' || d[i] == '\n')) i++;
    return i;
}

/* http._head_end: index just past the empty line ending the head, or -1 */
static Py_ssize_t head_end(const unsigned char *d, Py_ssize_t n, Py_ssize_t from, Py_ssize_t stop) {
    if (stop > n) stop = n;
    for (Py_ssize_t i = from; i < stop; i++) {
        const unsigned char *lf = memchr(d + i, '\n', (size_t)(stop - i));
        if (!lf) return -1;
        i = (Py_ssize_t)(lf - d);
        if (i + 1 < n && d[i + 1] == '\n') return i + 2;
        if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n') return i + 3;
    }
    return -1;
}

static Py_ssize_t find_lf(const unsigned char *d, Py_ssize_t n) {
    const unsigned char *lf = n > 0 ? memchr(d, '\n', (size_t)n) : NULL;
    return lf ? (Py_ssize_t)(lf - d) : -1;
}

/* http._parse_head(bytes(buf[at:at + n]), offset + at, direction[, extra]) */
static PyObject *call_parse_head(Assembler *a, Py_ssize_t at, Py_ssize_t n, PyObject *extra) {
    PyObject *block = PyBytes_FromStringAndSize((const char *)bufp(a) + at, n);
    if (!block) return NULL;
    PyObject *offset = PyLong_FromUnsignedLongLong(a->offset + (unsigned long long)at);
    if (!offset) {
        Py_DECREF(block);
        return NULL;
    }
    PyObject *args[4] = {block, offset, a->direction, extra};
    PyObject *head = PyObject_Vectorcall(py_parse_head, args, extra ? 4 : 3, NULL);
    Py_DECREF(block);
    Py_DECREF(offset);
    return head;
}

/* Head(kind, ..., offset, length) from parse()'s tuple, as the dataclass's
 * __init__ builds it (or through it: see head_plain) */
static PyObject *build_head(PyObject *fields, unsigned long long offset, Py_ssize_t length) {
    PyObject *values[HEAD_NFIELDS];
    for (int i = 0; i < 8; i++) values[i] = PyTuple_GET_ITEM(fields, i);
    values[8] = empty_tuple;
    if (!(values[9] = PyLong_FromUnsignedLongLong(offset))) return NULL;
    if (!(values[10] = PyLong_FromSsize_t(length))) {
        Py_DECREF(values[9]);
        return NULL;
    }
    PyObject *head;
    if (head_plain) {
        head = ((PyTypeObject *)py_Head)->tp_new((PyTypeObject *)py_Head, empty_tuple, NULL);
        for (int i = 0; head && i < HEAD_NFIELDS; i++) {
            if (PyObject_GenericSetAttr(head, head_fields[i], values[i]) < 0) Py_CLEAR(head);
        }
    } else {
        head = PyObject_Vectorcall(py_Head, values, HEAD_NFIELDS, NULL);
    }
    Py_DECREF(values[9]);
    Py_DECREF(values[10]);
    return head;
}

static PyObject *parse_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* http._parse_head(bytes(buf[:n]), offset, direction): what it does, without
 * the call, while http._c_parse_head is this module's parse_head (it is unless
 * the C parse was switched off, or replaced, as tests do: then the Python
 * function is called).  *fast is set to parse()'s tuple when it was used (a new
 * reference). */
static PyObject *parse_block(Assembler *a, Py_ssize_t n, PyObject **fast) {
    *fast = NULL;
    PyObject *hook = PyDict_GetItemWithError(py_http_dict, str_c_parse_head);
    if (!hook && PyErr_Occurred()) return NULL;
    if (hook && PyCFunction_Check(hook) &&
        PyCFunction_GET_FUNCTION(hook) == (PyCFunction)(void (*)(void))parse_head) {
        PyObject *fields = parse(bufp(a), n, a->dir);
        if (!fields) return NULL;
        if (fields != Py_None) {
            PyObject *head = build_head(fields, a->offset, n);
            if (!head) {
                Py_DECREF(fields);
                return NULL;
            }
            *fast = fields;
            return head;
        }
        Py_DECREF(fields);
    }
    return call_parse_head(a, 0, n, NULL);
}

/* http._start_line(line, direction, []) is not None: 1, 0 or -1 (error).  A
 * strict start line is a loose one too (_REQUEST_STRICT and _STATUS_STRICT
 * match only lines _REQUEST and _STATUS match), so only the others are
 * handed to the Python function. */
static int start_line_ok(Assembler *a, const unsigned char *d, Py_ssize_t n) {
    Start st;
    if ((a->dir != 2 && strict_request(d, 0, n, &st)) || (a->dir != 1 && strict_status(d, 0, n, &st)))
        return 1;
    PyObject *line = PyBytes_FromStringAndSize((const char *)d, n), *list = PyList_New(0);
    if (!line || !list) {
        Py_XDECREF(line);
        Py_XDECREF(list);
        return -1;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(py_start_line, line, a->direction, list, NULL);
    Py_DECREF(line);
    Py_DECREF(list);
    if (!r) return -1;
    const int ok = r != Py_None;
    Py_DECREF(r);
    return ok;
}

/* HeadAssembler._could_start(bytes(d[:n])): 1, 0 or -1 (error) */
static int could_start(Assembler *a, const unsigned char *d, Py_ssize_t n) {
    PyObject *line = PyBytes_FromStringAndSize((const char *)d, n);
    if (!line) return -1;
    int ok = 0;
    for (int pass = 0; pass < 2 && !ok; pass++) {
        if (a->dir == (pass == 0 ? 2 : 1)) continue;
        PyObject *m = PyObject_CallOneArg(pass == 0 ? py_request_partial : py_status_partial, line);
        if (!m) {
            Py_DECREF(line);
            return -1;
        }
        ok = m != Py_None;
        Py_DECREF(m);
    }
    Py_DECREF(line);
    return ok;
}

/* name.lower() for a header name */
static PyObject *lower(PyObject *s) {
    if (PyUnicode_CheckExact(s) && PyUnicode_IS_ASCII(s)) {
        const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        const Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
        Py_ssize_t i = 0;
        while (i < n && !(p[i] >= 'A' && p[i] <= 'Z')) i++;
        if (i == n) return Py_NewRef(s);
        PyObject *r = PyUnicode_New(n, 127);
        if (!r) return NULL;
        Py_UCS1 *q = PyUnicode_1BYTE_DATA(r);
        for (i = 0; i < n; i++) q[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (Py_UCS1)(p[i] + 32) : p[i];
        return r;
    }
    return PyObject_CallMethodNoArgs(s, str_lower);
}

/* head._by_name (functools.cached_property): the cached table, or one built as
 * Head._by_name builds it and stored in the instance dict as cached_property
 * stores it.  Borrowed from the instance dict. */
static PyObject *by_name(PyObject *head) {
    PyObject *dict = PyObject_GenericGetDict(head, NULL);
    if (!dict) return NULL;
    PyObject *table = PyDict_GetItemWithError(dict, str_by_name);
    if (table || PyErr_Occurred()) {
        Py_DECREF(dict);
        return table;
    }
    PyObject *headers = PyObject_GetAttr(head, str_headers), *it = NULL, *pair;
    if (!headers || !(it = PyObject_GetIter(headers)) || !(table = PyDict_New())) goto fail;
    while ((pair = PyIter_Next(it)) != NULL) {
        PyObject *name = NULL, *value = NULL, *key = NULL, *values = NULL;
        int ok = -1;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "a header is not a (name, value) pair");
            goto pair_done;
        }
        name = PyTuple_GET_ITEM(pair, 0);
        value = PyTuple_GET_ITEM(pair, 1);
        if (!(key = lower(name))) goto pair_done;
        PyObject *old = PyDict_GetItemWithError(table, key);
        if (!old && PyErr_Occurred()) goto pair_done;
        if (old) {
            if (!PyTuple_Check(old)) {
                PyErr_SetString(PyExc_TypeError, "_by_name holds a non-tuple");
                goto pair_done;
            }
            const Py_ssize_t k = PyTuple_GET_SIZE(old);
            if (!(values = PyTuple_New(k + 1))) goto pair_done;
            for (Py_ssize_t j = 0; j < k; j++)
                PyTuple_SET_ITEM(values, j, Py_NewRef(PyTuple_GET_ITEM(old, j)));
            PyTuple_SET_ITEM(values, k, Py_NewRef(value));
        } else if (!(values = PyTuple_Pack(1, value))) {
            goto pair_done;
        }
        ok = PyDict_SetItem(table, key, values);
    pair_done:
        Py_XDECREF(key);
        Py_XDECREF(values);
        Py_DECREF(pair);
        if (ok < 0) goto fail;
    }
    if (PyErr_Occurred() || PyDict_SetItem(dict, str_by_name, table) < 0) goto fail;
    Py_DECREF(headers);
    Py_DECREF(it);
    Py_DECREF(table);
    table = PyDict_GetItemWithError(dict, str_by_name);
    Py_DECREF(dict);
    return table;
fail:
    Py_XDECREF(headers);
    Py_XDECREF(it);
    Py_XDECREF(table);
    Py_DECREF(dict);
    return NULL;
}

/* Whether the final coding of the Transfer-Encoding values (a tuple of str) is
 * chunked: the last comma-separated part not empty after strip(" \t"), lower-
 * cased, as HeadAssembler._after_head splits ", ".join(values).  The values
 * are latin-1, where only ASCII letters lower-case to ASCII.  1, 0 or -1. */
static int chunked_last(PyObject *values) {
    if (!PyTuple_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "_by_name holds a non-tuple");
        return -1;
    }
    int found = 0, chunked = 0;
    for (Py_ssize_t v = 0; v < PyTuple_GET_SIZE(values); v++) {
        PyObject *s = PyTuple_GET_ITEM(values, v);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "a Transfer-Encoding value is not a str");
            return -1;
        }
        const int kind = PyUnicode_KIND(s);
        const void *data = PyUnicode_DATA(s);
        const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        Py_ssize_t p = 0;
        for (;;) {
            Py_ssize_t q = p;
            while (q < n && PyUnicode_READ(kind, data, q) != ',') q++;
            Py_ssize_t x = p, y = q;
            while (x < y && (PyUnicode_READ(kind, data, x) == ' ' || PyUnicode_READ(kind, data, x) == '\t')) x++;
            while (y > x && (PyUnicode_READ(kind, data, y - 1) == ' ' || PyUnicode_READ(kind, data, y - 1) == '\t')) y--;
            if (y > x) {
                found = 1;
                chunked = y - x == 7;
                for (Py_ssize_t i = 0; chunked && i < 7; i++) {
                    Py_UCS4 c = PyUnicode_READ(kind, data, x + i);
                    if (c >= 'A' && c <= 'Z') c += 32;
                    chunked = c == (Py_UCS4)"chunked"[i];
                }
            }
            if (q >= n) break;
            p = q + 1;
        }
    }
    return found && chunked;
}

/* status as a C long, -1 for None (or anything out of range, as the status of
 * a Head is a 3-digit int or None) */
static long status_value(PyObject *status) {
    if (status == Py_None || !PyLong_Check(status)) return -1;
    int overflow;
    const long s = PyLong_AsLongAndOverflow(status, &overflow);
    return overflow ? -1 : s;
}

/* HeadAssembler._after_head.  kind_response and status as the head's (the
 * caller knows them when it built the head). */
static int after_head(Assembler *a, PyObject *head, int kind_response, long status) {
    const int interim = status >= 100 && status < 200;
    if (kind_response && a->request_of && a->request_of != Py_None && !interim) {
        PyObject *fn = Py_NewRef(a->request_of);
        PyObject *method = PyObject_CallOneArg(fn, head);
        Py_DECREF(fn);
        if (!method) return -1;
        int is = PyObject_RichCompareBool(method, str_HEAD, Py_EQ);
        if (is == 0 && status >= 200 && status < 300)
            is = PyObject_RichCompareBool(method, str_CONNECT, Py_EQ) ? 2 : 0;
        Py_DECREF(method);
        if (is < 0 || PyErr_Occurred()) return -1;
        if (is == 1) {
            a->state = S_HEAD;
            return 0;
        }
        if (is == 2) {
            a->state = S_DONE; /* a tunnel: what follows is not HTTP */
            return 0;
        }
    }
    if (kind_response && status != -1) {
        if (status == 101) {
            a->state = S_DONE;
            return 0;
        }
        if (interim || status == 204 || status == 304) {
            a->state = S_HEAD;
            return 0;
        }
    }
    PyObject *table = by_name(head);
    if (!table) return -1;
    PyObject *te = PyDict_GetItemWithError(table, str_te);
    if (!te && PyErr_Occurred()) return -1;
    if (te && PyObject_IsTrue(te)) {
        const int chunked = chunked_last(te);
        if (chunked < 0) return -1;
        if (chunked) {
            a->state = S_CHUNK_SIZE;
            return 0;
        }
        if (count_code(a, code_unsupported_te) < 0) return -1;
        a->state = kind_response ? S_UNTIL_CLOSE : S_LOST;
        return 0;
    }
    PyObject *cl_values = PyDict_GetItemWithError(table, str_cl);
    if (!cl_values && PyErr_Occurred()) return -1;
    if (cl_values && PyObject_IsTrue(cl_values)) {
        PyObject *cl = PyObject_GetAttr(head, str_content_length);
        if (!cl) return -1;
        if (cl == Py_None) { /* malformed or conflicting: length unknown */
            a->state = S_LOST;
        } else {
            const unsigned long long n = PyLong_AsUnsignedLongLong(cl);
            if (n == (unsigned long long)-1 && PyErr_Occurred()) {
                Py_DECREF(cl);
                return -1;
            }
            if (n > 0) {
                a->remaining = n;
                a->state = S_BODY;
            } else {
                a->state = S_HEAD;
            }
        }
        Py_DECREF(cl);
        return 0;
    }
    a->state = kind_response ? S_UNTIL_CLOSE : S_HEAD;
    return 0;
}

/* A head completed at buf[:end]: count its anomalies, append it to out, drop
 * its bytes, pick the next state.  Steals head; fields is parse()'s tuple when
 * the C parse built it (stolen too), else NULL. */
static int emit(Assembler *a, PyObject *out, PyObject *head, PyObject *fields, Py_ssize_t end) {
    int kind_response;
    long status;
    if (fields) {
        kind_response = PyTuple_GET_ITEM(fields, 0) == str_response;
        status = status_value(PyTuple_GET_ITEM(fields, 4));
        Py_DECREF(fields);
    } else {
        PyObject *codes = PyObject_GetAttr(head, str_anomalies);
        if (!codes) goto fail;
        const int r = count_all(a, codes);
        Py_DECREF(codes);
        if (r < 0) goto fail;
        PyObject *kind = PyObject_GetAttr(head, str_kind);
        if (!kind) goto fail;
        kind_response = PyObject_RichCompareBool(kind, str_response, Py_EQ);
        Py_DECREF(kind);
        if (kind_response < 0) goto fail;
        PyObject *st = PyObject_GetAttr(head, str_status);
        if (!st) goto fail;
        status = status_value(st);
        Py_DECREF(st);
    }
    if (PyList_Append(out, head) < 0) goto fail;
    drop(a, end, DROP_NONE);
    const int r = after_head(a, head, kind_response, status);
    Py_DECREF(head);
    return r < 0 ? -1 : 1;
fail:
    Py_DECREF(head);
    return -1;
}

/* HeadAssembler._step_head: 1 a head was completed, 0 more input is needed
 * (or the assembler gave up), -1 error */
static int step_head(Assembler *a, PyObject *out) {
    const Py_ssize_t skip = skip_empty_lines(a);
    if (skip) {
        drop(a, skip, DROP_DISCARD);
        if (!a->len) return 0;
    }
    const unsigned char *d = bufp(a);
    const Py_ssize_t n = a->len, limit = a->limit, stop = n < limit ? n : limit;
    const Py_ssize_t from = a->scanned > 2 ? a->scanned - 2 : 0;
    const Py_ssize_t lf = find_lf(d, stop);
    if (lf != -1 && !(n >= H2_PREFACE_LEN && memcmp(d, H2_PREFACE, H2_PREFACE_LEN) == 0)) {
        /* the usual case, a whole head in the buffer */
        const Py_ssize_t end = head_end(d, n, from, stop);
        if (end != -1) {
            PyObject *fields, *head = parse_block(a, end, &fields);
            if (!head) return -1;
            if (head != Py_None) return emit(a, out, head, fields, end);
            Py_DECREF(head);
        }
    }
    Py_ssize_t first = lf != -1 ? lf : stop;
    if (first > 0 && d[first - 1] == '\r') first--;
    if (lf != -1 || n >= limit) {
        if (first == H2_PREFACE_LEN && memcmp(d, H2_PREFACE, H2_PREFACE_LEN) == 0 && a->dir != 2) {
            a->state = S_DONE;
            drop(a, n, DROP_DISCARD);
            return 0;
        }
        const int ok = start_line_ok(a, d, first);
        if (ok < 0) return -1;
        if (!ok) return lose(a, code_bad_start_line);
    } else {
        const int ok = could_start(a, d, first);
        if (ok < 0) return -1;
        if (!ok) return lose(a, code_bad_start_line);
    }
    const Py_ssize_t end = head_end(d, n, from, stop);
    if (end == -1) {
        if (n < limit) {
            a->scanned = n;
            return 0;
        }
        PyObject *head = call_parse_head(a, 0, limit, extra_head_too_long);
        if (!head) return -1;
        if (head != Py_None) {
            PyObject *codes = PyObject_GetAttr(head, str_anomalies);
            const int r = codes ? count_all(a, codes) : -1;
            Py_XDECREF(codes);
            if (r < 0 || PyList_Append(out, head) < 0) {
                Py_DECREF(head);
                return -1;
            }
        }
        Py_DECREF(head);
        return lose(a, NULL);
    }
    PyObject *fields, *head = parse_block(a, end, &fields);
    if (!head) return -1;
    if (head == Py_None) { /* cannot happen: the start line was checked above */
        Py_DECREF(head);
        return lose(a, code_bad_start_line);
    }
    return emit(a, out, head, fields, end);
}

/* HeadAssembler._step_chunk_size: 1 go on, 0 more input needed, -1 error */
static int step_chunk_size(Assembler *a) {
    const unsigned char *d = bufp(a);
    const Py_ssize_t lf = find_lf(d, a->len < max_chunk_line ? a->len : max_chunk_line);
    if (lf == -1) {
        if (a->len >= max_chunk_line) return lose(a, code_bad_chunk);
        return 0;
    }
    /* bytes(buf[:lf]).rstrip(b"\r").split(b";", 1)[0].strip(b" \t") */
    Py_ssize_t e = lf;
    while (e > 0 && d[e - 1] == '\r') e--;
    const unsigned char *semi = e > 0 ? memchr(d, ';', (size_t)e) : NULL;
    if (semi) e = (Py_ssize_t)(semi - d);
    Py_ssize_t s = 0;
    while (s < e && is_sp_ht(d[s])) s++;
    while (e > s && is_sp_ht(d[e - 1])) e--;
    if (e == s || e - s > 15) return lose(a, code_bad_chunk); /* _HEX */
    unsigned long long size = 0;
    for (Py_ssize_t i = s; i < e; i++) {
        const unsigned char c = d[i];
        unsigned v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return lose(a, code_bad_chunk);
        size = size * 16 + v; /* at most 15 digits: < 2**60 */
    }
    drop(a, lf + 1, DROP_BODY);
    if (size == 0) {
        a->state = S_TRAILERS;
    } else {
        a->remaining = size;
        a->state = S_CHUNK_DATA;
    }
    return 1;
}

/* HeadAssembler._step_trailers */
static int step_trailers(Assembler *a) {
    const unsigned char *d = bufp(a);
    const Py_ssize_t n = a->len;
    if (d[0] == '\n' || (n >= 2 && d[0] == '\r' && d[1] == '\n')) {
        drop(a, d[0] == '\n' ? 1 : 2, DROP_BODY);
        a->state = S_HEAD;
        return 1;
    }
    if (d[0] == '\r' && n < 2) return 0;
    const Py_ssize_t end = head_end(d, n, 0, n < a->limit ? n : a->limit);
    if (end == -1) {
        if (n >= a->limit) return lose(a, code_head_too_long);
        return 0;
    }
    drop(a, end, DROP_BODY);
    a->state = S_HEAD;
    return 1;
}

/* HeadAssembler._run */
static int run(Assembler *a, PyObject *out) {
    while (a->len) {
        int r;
        switch (a->state) {
        case S_HEAD:
            if ((r = step_head(a, out)) <= 0) return r;
            break;
        case S_BODY: {
            const Py_ssize_t n = a->remaining < (unsigned long long)a->len ? (Py_ssize_t)a->remaining : a->len;
            drop(a, n, DROP_BODY);
            a->remaining -= (unsigned long long)n;
            if (a->remaining == 0) a->state = S_HEAD;
            break;
        }
        case S_CHUNK_SIZE:
            if ((r = step_chunk_size(a)) <= 0) return r;
            break;
        case S_CHUNK_DATA: {
            if (a->remaining > 0) {
                const Py_ssize_t n = a->remaining < (unsigned long long)a->len ? (Py_ssize_t)a->remaining : a->len;
                drop(a, n, DROP_BODY);
                a->remaining -= (unsigned long long)n;
                break;
            }
            const Py_ssize_t lf = find_lf(bufp(a), a->len < 3 ? a->len : 3);
            if (lf == -1) {
                if (a->len >= 3) return lose(a, code_bad_chunk);
                return 0;
            }
            drop(a, lf + 1, DROP_BODY);
            a->state = S_CHUNK_SIZE;
            break;
        }
        case S_TRAILERS:
            if ((r = step_trailers(a)) <= 0) return r;
            break;
        default: /* S_UNTIL_CLOSE, S_DONE, S_LOST */
            drop(a, a->len, a->state == S_UNTIL_CLOSE ? DROP_BODY : DROP_DISCARD);
            return 0;
        }
    }
    return 0;
}

static int enter(Assembler *a) {
    if (a->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the assembler was called again while it was feeding");
        return -1;
    }
    a->busy = 1;
    return 0;
}

static PyObject *Assembler_feed(Assembler *a, PyObject *chunk) {
    if (enter(a) < 0) return NULL;
    PyObject *out = PyList_New(0);
    if (!out) goto fail;
    const int truth = PyObject_IsTrue(chunk);
    if (truth < 0) goto fail;
    if (!truth) goto done;
    if (a->state == S_LOST) a->state = S_HEAD; /* a segment boundary: try again */
    if (a->state == S_DONE || a->state == S_UNTIL_CLOSE) {
        const Py_ssize_t n = PyObject_Length(chunk);
        if (n < 0) goto fail;
        discard_input(a, (unsigned long long)n, a->state == S_UNTIL_CLOSE);
        goto done;
    }
    if ((a->state == S_BODY || a->state == S_CHUNK_DATA) && !a->len) {
        const Py_ssize_t n = PyObject_Length(chunk);
        if (n < 0) goto fail;
        if ((unsigned long long)n < a->remaining) {
            /* inside a body that goes on past this chunk: nothing to look at */
            a->remaining -= (unsigned long long)n;
            discard_input(a, (unsigned long long)n, 1);
            goto done;
        }
    }
    Py_buffer view;
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0) goto fail;
    const int r = buf_append(a, view.buf, view.len);
    PyBuffer_Release(&view);
    if (r < 0 || run(a, out) < 0) goto fail;
done:
    a->busy = 0;
    return out;
fail:
    a->busy = 0;
    Py_XDECREF(out);
    return NULL;
}

static PyObject *Assembler_close(Assembler *a, PyObject *Py_UNUSED(ignored)) {
    if (enter(a) < 0) return NULL;
    PyObject *out = PyList_New(0);
    if (!out) goto fail;
    if (a->state == S_HEAD && a->len) {
        const Py_ssize_t start = skip_empty_lines(a);
        if (start < a->len) {
            PyObject *head = call_parse_head(a, start, a->len - start, extra_truncated_head);
            if (!head) goto fail;
            if (head != Py_None) {
                PyObject *codes = PyObject_GetAttr(head, str_anomalies);
                const int r = codes ? count_all(a, codes) : -1;
                Py_XDECREF(codes);
                if (r < 0 || PyList_Append(out, head) < 0) {
                    Py_DECREF(head);
                    goto fail;
                }
                Py_DECREF(head);
            } else {
                Py_DECREF(head);
                const unsigned char *d = bufp(a) + start;
                Py_ssize_t n = a->len - start;
                while (n > 0 && d[n - 1] == '\r') n--;
                const int ok = could_start(a, d, n);
                if (ok < 0 || (ok && count_code(a, code_truncated_head) < 0)) goto fail;
            }
        }
    }
    drop(a, a->len, DROP_DISCARD);
    a->state = S_DONE;
    a->busy = 0;
    return out;
fail:
    a->busy = 0;
    Py_XDECREF(out);
    return NULL;
}

/* A count of bytes for gap and skip, already compared as the Python class
 * compares it (n <= 0 returns early, skip's bound): 1 with *n set, 2 for
 * n >= 2**64, -1 error (not an integer: the Python class would carry a float
 * along) */
static int byte_count(PyObject *arg, unsigned long long *n) {
    PyObject *index = PyNumber_Index(arg);
    if (!index) return -1;
    int r = 1;
    *n = PyLong_AsUnsignedLongLong(index);
    if (*n == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            r = -1;
        } else {
            PyErr_Clear();
            r = 2;
        }
    }
    Py_DECREF(index);
    return r;
}

static PyObject *too_large(void) {
    PyErr_SetString(PyExc_OverflowError, "byte counts are 64-bit: at most 2**64 - 1");
    return NULL;
}

/* Whether n more bytes fit every counter (offset, body_bytes, discarded_bytes) */
static int fits(Assembler *a, unsigned long long n) {
    const unsigned long long most = a->offset > a->body_bytes ? a->offset : a->body_bytes;
    return n <= ULLONG_MAX - (most > a->discarded_bytes ? most : a->discarded_bytes);
}

static PyObject *Assembler_gap(Assembler *a, PyObject *arg) {
    const int none = PyObject_RichCompareBool(arg, small_zero, Py_LE);
    if (none < 0) return NULL;
    if (none) Py_RETURN_NONE;
    unsigned long long n;
    const int r = byte_count(arg, &n);
    if (r < 0) return NULL;
    if (r == 2 || !fits(a, n)) return too_large();
    if (enter(a) < 0) return NULL;
    if ((a->state == S_BODY || a->state == S_CHUNK_DATA) && !a->len && n <= a->remaining) {
        a->remaining -= n;
        a->offset += n;
        a->body_bytes += n;
        if (a->remaining == 0 && a->state == S_BODY) a->state = S_HEAD;
    } else if (a->state == S_DONE || a->state == S_UNTIL_CLOSE) {
        a->offset += n;
    } else {
        lose(a, NULL); /* cannot fail without a code */
        a->offset += n;
    }
    a->busy = 0;
    Py_RETURN_NONE;
}

/* HeadAssembler.body_left: -1 every byte from here on, else how many */
static int body_left_of(Assembler *a, unsigned long long *left) {
    if (a->state == S_UNTIL_CLOSE || a->state == S_DONE) return -1;
    *left = ((a->state == S_BODY || a->state == S_CHUNK_DATA) && !a->len) ? a->remaining : 0;
    return 0;
}

static PyObject *Assembler_body_left(Assembler *a, PyObject *Py_UNUSED(ignored)) {
    unsigned long long left;
    if (body_left_of(a, &left) < 0) return PyLong_FromLong(-1);
    return PyLong_FromUnsignedLongLong(left);
}

static PyObject *Assembler_skip(Assembler *a, PyObject *arg) {
    unsigned long long left = 0, n = 0;
    const int all = body_left_of(a, &left) < 0;
    PyObject *left_obj = all ? PyLong_FromLong(-1) : PyLong_FromUnsignedLongLong(left);
    if (!left_obj) return NULL;
    /* not (n > 0 and (left == -1 or n < left)) */
    int ok = PyObject_RichCompareBool(arg, small_zero, Py_GT);
    if (ok > 0 && !all) ok = PyObject_RichCompareBool(arg, left_obj, Py_LT);
    if (ok <= 0) {
        if (ok == 0)
            PyErr_Format(PyExc_ValueError, "skip(%S) with %S bytes skippable", arg, left_obj);
        Py_DECREF(left_obj);
        return NULL;
    }
    Py_DECREF(left_obj);
    const int r = byte_count(arg, &n);
    if (r < 0) return NULL;
    if (r == 2 || !fits(a, n)) return too_large(); /* r == 2 only when all: else n < left */
    if (enter(a) < 0) return NULL;
    if (all) {
        discard_input(a, n, a->state == S_UNTIL_CLOSE);
    } else {
        a->remaining -= n;
        discard_input(a, n, 1);
    }
    a->busy = 0;
    Py_RETURN_NONE;
}

static PyObject *Assembler_expect_no_body(Assembler *a, PyObject *Py_UNUSED(ignored)) {
    if (a->state == S_BODY || a->state == S_CHUNK_SIZE || a->state == S_UNTIL_CLOSE) {
        if (enter(a) < 0) return NULL;
        a->state = S_HEAD;
        a->remaining = 0;
        PyObject *ignored_heads = PyList_New(0);
        const int r = ignored_heads ? run(a, ignored_heads) : -1;
        Py_XDECREF(ignored_heads);
        a->busy = 0;
        if (r < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Assembler_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"direction", "max_head_bytes", NULL};
    PyObject *direction = Py_None, *max_head = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:Assembler", kwlist, &direction, &max_head))
        return NULL;
    if (bind() < 0) return NULL;
    const int valid = PySequence_Contains(valid_directions, direction);
    if (valid < 0) return NULL;
    if (!valid) {
        PyErr_Format(PyExc_ValueError, "direction must be 'request', 'response' or None, not %R",
                     direction);
        return NULL;
    }
    int dir = 0;
    if (direction != Py_None) {
        const int is_request = PyObject_RichCompareBool(direction, str_request, Py_EQ);
        if (is_request < 0) return NULL;
        dir = is_request ? 1 : 2;
    }
    Py_ssize_t limit;
    if (max_head) {
        const int small = PyObject_RichCompareBool(max_head, small_sixteen, Py_LT);
        if (small < 0) return NULL;
        if (small) {
            PyErr_Format(PyExc_ValueError, "max_head_bytes must be at least 16, not %S", max_head);
            return NULL;
        }
        PyObject *index = PyNumber_Index(max_head);
        if (!index) return NULL;
        int overflow;
        const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
        Py_DECREF(index);
        if (v == -1 && PyErr_Occurred()) return NULL;
        if (overflow < 0 || (!overflow && v < 16)) { /* its __index__ disagrees with its < */
            PyErr_Format(PyExc_ValueError, "max_head_bytes must be at least 16, not %S", max_head);
            return NULL;
        }
        limit = (overflow > 0 || v > PY_SSIZE_T_MAX) ? PY_SSIZE_T_MAX : (Py_ssize_t)v;
        Py_INCREF(max_head);
    } else {
        max_head = Py_NewRef(py_max_head_default);
        limit = max_head_default;
    }
    PyObject *anomalies = PyObject_CallNoArgs(py_Counter);
    if (!anomalies) {
        Py_DECREF(max_head);
        return NULL;
    }
    Assembler *a = (Assembler *)type->tp_alloc(type, 0);
    if (!a) {
        Py_DECREF(max_head);
        Py_DECREF(anomalies);
        return NULL;
    }
    a->direction = Py_NewRef(direction);
    a->max_head_obj = max_head;
    a->request_of = Py_NewRef(Py_None);
    a->anomalies = anomalies;
    a->dir = dir;
    a->state = S_HEAD;
    a->limit = limit;
    return (PyObject *)a;
}

static int Assembler_traverse(Assembler *a, visitproc visit, void *arg) {
    Py_VISIT(a->direction);
    Py_VISIT(a->max_head_obj);
    Py_VISIT(a->request_of);
    Py_VISIT(a->anomalies);
    return 0;
}

static int Assembler_clear(Assembler *a) {
    Py_CLEAR(a->direction);
    Py_CLEAR(a->max_head_obj);
    Py_CLEAR(a->request_of);
    Py_CLEAR(a->anomalies);
    return 0;
}

static void Assembler_dealloc(Assembler *a) {
    PyObject_GC_UnTrack(a);
    Assembler_clear(a);
    PyMem_Free(a->buf);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *get_or_none(PyObject *v) { return Py_NewRef(v ? v : Py_None); }

static PyObject *Assembler_get_direction(Assembler *a, void *c) { (void)c; return get_or_none(a->direction); }
static PyObject *Assembler_get_max_head(Assembler *a, void *c) { (void)c; return get_or_none(a->max_head_obj); }
static PyObject *Assembler_get_request_of(Assembler *a, void *c) { (void)c; return get_or_none(a->request_of); }
static PyObject *Assembler_get_anomalies(Assembler *a, void *c) { (void)c; return get_or_none(a->anomalies); }
static PyObject *Assembler_get_state(Assembler *a, void *c) { (void)c; return Py_NewRef(state_str[a->state]); }
static PyObject *Assembler_get_body_bytes(Assembler *a, void *c) {
    (void)c;
    return PyLong_FromUnsignedLongLong(a->body_bytes);
}
static PyObject *Assembler_get_discarded_bytes(Assembler *a, void *c) {
    (void)c;
    return PyLong_FromUnsignedLongLong(a->discarded_bytes);
}

static int Assembler_set_request_of(Assembler *a, PyObject *v, void *c) {
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "request_of cannot be deleted (set it to None)");
        return -1;
    }
    Py_XSETREF(a->request_of, Py_NewRef(v));
    return 0;
}

static PyGetSetDef Assembler_getset[] = {
    {"direction", (getter)Assembler_get_direction, NULL, "None, 'request' or 'response'", NULL},
    {"max_head_bytes", (getter)Assembler_get_max_head, NULL, "largest head accepted", NULL},
    {"request_of", (getter)Assembler_get_request_of, (setter)Assembler_set_request_of,
     "None, or called with each final response head: the method of the request it answers",
     NULL},
    {"anomalies", (getter)Assembler_get_anomalies, NULL, "collections.Counter of anomaly codes",
     NULL},
    {"body_bytes", (getter)Assembler_get_body_bytes, NULL, "body bytes skipped", NULL},
    {"discarded_bytes", (getter)Assembler_get_discarded_bytes, NULL,
     "bytes discarded (not HTTP, or after the end of HTTP/1)", NULL},
    {"state", (getter)Assembler_get_state, NULL, "the state, as netsift.http's state names", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Assembler_methods[] = {
    {"feed", (PyCFunction)Assembler_feed, METH_O,
     "feed(chunk, /) -> list[Head]\n\nThe heads completed by the next chunk of the stream."},
    {"close", (PyCFunction)Assembler_close, METH_NOARGS,
     "close() -> list[Head]\n\nEnd of stream: a head in progress, with truncated_head."},
    {"gap", (PyCFunction)Assembler_gap, METH_O,
     "gap(n, /) -> None\n\nn bytes of the stream are missing (not captured)."},
    {"body_left", (PyCFunction)Assembler_body_left, METH_NOARGS,
     "body_left() -> int\n\nHow many of the next bytes are certainly skipped (-1: all)."},
    {"skip", (PyCFunction)Assembler_skip, METH_O,
     "skip(n, /) -> None\n\nAccount for n bytes body_left() says are skipped, as feed would."},
    {"expect_no_body", (PyCFunction)Assembler_expect_no_body, METH_NOARGS,
     "expect_no_body() -> None\n\nThe last head's message has no body whatever its fields say."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject AssemblerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netsift._http.Assembler",
    .tp_doc = "Assembler(direction=None, max_head_bytes=MAX_HEAD_BYTES)\n\n"
              "netsift.http.HeadAssembler in C: heads from consecutive payload chunks of one "
              "direction of a connection (the Python class is the specification).",
    .tp_basicsize = sizeof(Assembler),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Assembler_new,
    .tp_dealloc = (destructor)Assembler_dealloc,
    .tp_traverse = (traverseproc)Assembler_traverse,
    .tp_clear = (inquiry)Assembler_clear,
    .tp_methods = Assembler_methods,
    .tp_getset = Assembler_getset,
};

/* Interned strings and small constants for the assembler; 0 or -1. */
static int init_assembler_constants(void) {
    for (int i = 0; i < S_COUNT; i++)
        if (!(state_str[i] = PyUnicode_InternFromString(state_names[i]))) return -1;
    for (int i = 0; i < HEAD_NFIELDS; i++)
        if (!(head_fields[i] = PyUnicode_InternFromString(head_field_names[i]))) return -1;
    struct { PyObject **p; const char *s; } strs[] = {
        {&str_HEAD, "HEAD"}, {&str_CONNECT, "CONNECT"}, {&str_te, TE_NAME}, {&str_cl, CL_NAME},
        {&str_by_name, "_by_name"}, {&str_lower, "lower"}, {&str_headers, "headers"},
        {&str_anomalies, "anomalies"}, {&str_kind, "kind"}, {&str_status, "status"},
        {&str_content_length, "content_length"}, {&str_c_parse_head, "_c_parse_head"},
        {&code_bad_start_line, "bad_start_line"}, {&code_bad_chunk, "bad_chunk"},
        {&code_head_too_long, "head_too_long"}, {&code_truncated_head, "truncated_head"},
        {&code_unsupported_te, "unsupported_transfer_coding"},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!(*strs[i].p = PyUnicode_InternFromString(strs[i].s))) return -1;
    if (!(extra_head_too_long = PyTuple_Pack(1, code_head_too_long))) return -1;
    if (!(extra_truncated_head = PyTuple_Pack(1, code_truncated_head))) return -1;
    if (!(valid_directions = PyTuple_Pack(3, str_request, str_response, Py_None))) return -1;
    if (!(empty_tuple = PyTuple_New(0))) return -1;
    if (!(small_zero = PyLong_FromLong(0))) return -1;
    if (!(small_one = PyLong_FromLong(1))) return -1;
    if (!(small_sixteen = PyLong_FromLong(16))) return -1;
    return 0;
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
    PyModuleDef_HEAD_INIT, "_http", "HTTP/1.x head parsing and head assembly fast paths, in C (see netsift.http).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__http(void) {
    if (!str_request) {
        init_tchar();
        str_request = PyUnicode_InternFromString("request");
        str_response = PyUnicode_InternFromString("response");
        if (!str_request || !str_response || init_assembler_constants() < 0) return NULL;
        if (PyType_Ready(&AssemblerType) < 0) return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Assembler", (PyObject *)&AssemblerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
