/*
 * _dns.c: a summary of one DNS message, in C.
 *
 * summarize(data) -> (id, flags, rcode, counts, qname, qtype, qclass,
 *                     answers, anomalies)
 *
 * The specification is netsift.dns.summarize_py, itself built from
 * netsift.dns.parse_message; a differential test holds the two together.  The
 * whole message is walked (every name and every rdata is checked exactly as
 * parse_message checks it) so that the anomaly codes, their order and the
 * EDNS extended RCODE agree; only the first question's name and the ANSWER
 * section's texts are rendered.
 *
 * Safety: every read is bounded by the buffer's length; a compression pointer
 * must point strictly before the start of the name or suffix being read, so
 * each jump goes to a smaller offset (no loops, no recursion, at most one jump
 * per octet); counts are capped by the octets present.  Never raises on bad
 * input: only on a non-buffer argument or when Python runs out of memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "_buffers.h"

/* Anomaly codes, in the order of netsift.dns.ANOMALIES; 0 means no damage. */
enum {
    OK = 0,
    TRUNCATED_MESSAGE,
    POINTER_LOOP_OR_FORWARD,
    LABEL_TOO_LONG,
    NAME_TOO_LONG,
    BAD_LABEL_TYPE,
    RDATA_OVERRUN,
    TRAILING_BYTES,
    TOO_MANY_RECORDS,
    MULTIPLE_OPT_RECORDS,
    N_CODES
};

static const char *const code_names[N_CODES] = {
    NULL,
    "truncated_message",
    "pointer_loop_or_forward",
    "label_too_long",
    "name_too_long",
    "bad_label_type",
    "rdata_overrun",
    "trailing_bytes",
    "too_many_records",
    "multiple_opt_records",
};

/* Interned at module init; the module is single-phase and never unloaded. */
static PyObject *code_str[N_CODES];
static PyObject *ipv6_address; /* ipaddress.IPv6Address, for IPv4-mapped text */

enum {
    TYPE_A = 1,
    TYPE_NS = 2,
    TYPE_CNAME = 5,
    TYPE_SOA = 6,
    TYPE_PTR = 12,
    TYPE_MX = 15,
    TYPE_TXT = 16,
    TYPE_AAAA = 28,
    TYPE_LOC = 29,
    TYPE_SRV = 33,
    TYPE_DNAME = 39,
    TYPE_OPT = 41,
    TYPE_SVCB = 64,
    TYPE_HTTPS = 65,
};

#define HEADER_LEN 12
#define MAX_NAME_LEN 255
#define MIN_QUESTION_LEN 5
#define MIN_RECORD_LEN 11
/* A name's text: at most 254 label octets plus length bytes, each octet at
 * most 4 characters (\DDD), each length byte at most one '.'. */
#define NAME_TEXT_MAX (4 * MAX_NAME_LEN + 8)

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    unsigned char order[N_CODES]; /* codes in the order first seen */
    int n_codes;
    unsigned seen; /* bit i: code i noted */
} Parser;

static void note(Parser *p, int code) {
    if (!(p->seen & (1u << code))) {
        p->seen |= 1u << code;
        p->order[p->n_codes++] = (unsigned char)code;
    }
}

static inline unsigned rd16(const unsigned char *b) { return ((unsigned)b[0] << 8) | b[1]; }

static inline uint32_t rd32(const unsigned char *b) {
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Presentation text of one label octet (RFC 1035 §5.1, as dns._label_text). */
static inline Py_ssize_t put_octet(char *t, Py_ssize_t k, unsigned char c) {
    if (c >= 0x21 && c <= 0x7E) {
        if (c == '.' || c == '\\') t[k++] = '\\';
        t[k++] = (char)c;
    } else {
        t[k++] = '\\';
        t[k++] = (char)('0' + c / 100);
        t[k++] = (char)('0' + (c / 10) % 10);
        t[k++] = (char)('0' + c % 10);
    }
    return k;
}

/* dns._read_name: the name at pos, its in-place octets before limit.  Returns
 * OK and sets *end (just after the in-place octets) or an anomaly code.  With
 * txt (NAME_TEXT_MAX chars) the text is written there and its length to
 * *txt_len.  allow_ptr = 0 makes every pointer a forward one (a name read from
 * rdata octets alone, as the DNAME text is). */
static int read_name(const unsigned char *d, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t limit,
                     int allow_ptr, Py_ssize_t *end, char *txt, Py_ssize_t *txt_len) {
    Py_ssize_t start = pos, stop = -1, k = 0;
    int wire_len = 1, labels = 0;
    for (;;) {
        if (pos >= limit) return TRUNCATED_MESSAGE;
        const unsigned len = d[pos];
        const unsigned kind = len & 0xC0;
        if (kind == 0xC0) {
            if (pos + 1 >= limit) return TRUNCATED_MESSAGE;
            const Py_ssize_t target = (Py_ssize_t)(((len & 0x3F) << 8) | d[pos + 1]);
            if (!allow_ptr || target >= start) return POINTER_LOOP_OR_FORWARD;
            if (stop < 0) stop = pos + 2;
            pos = start = target;
            limit = n;
            continue;
        }
        if (kind == 0x40) return LABEL_TOO_LONG;
        if (kind == 0x80) return BAD_LABEL_TYPE;
        if (len == 0) {
            *end = stop < 0 ? pos + 1 : stop;
            if (txt) {
                if (!labels) txt[k++] = '.';
                *txt_len = k;
            }
            return OK;
        }
        wire_len += (int)len + 1;
        if (wire_len > MAX_NAME_LEN) return NAME_TOO_LONG;
        if (pos + 1 + (Py_ssize_t)len > limit) return TRUNCATED_MESSAGE;
        if (txt) {
            if (labels) txt[k++] = '.';
            const unsigned char *c = d + pos + 1;
            for (unsigned i = 0; i < len; i++) k = put_octet(txt, k, c[i]);
        }
        labels++;
        pos += 1 + (Py_ssize_t)len;
    }
}

/* dns._name_in_rdata: a truncated name inside rdata is an rdata overrun. */
static int name_in_rdata(const Parser *p, Py_ssize_t pos, Py_ssize_t rd_end, Py_ssize_t *end,
                         char *txt, Py_ssize_t *txt_len) {
    int rc = read_name(p->d, p->n, pos, rd_end, 1, end, txt, txt_len);
    return rc == TRUNCATED_MESSAGE ? RDATA_OVERRUN : rc;
}

/* dns._key_values: (code, length, value) triples filling [pos, end). */
static int key_values(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end) {
    while (pos < end) {
        if (pos + 4 > end) return RDATA_OVERRUN;
        const Py_ssize_t len = rd16(d + pos + 2);
        if (pos + 4 + len > end) return RDATA_OVERRUN;
        pos += 4 + len;
    }
    return OK;
}

/* dns._character_strings: length-prefixed strings filling [pos, end); sets
 * the number of strings and their total length. */
static int char_strings(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end,
                        Py_ssize_t *count, Py_ssize_t *total) {
    Py_ssize_t c = 0, t = 0;
    while (pos < end) {
        const Py_ssize_t len = d[pos];
        if (pos + 1 + len > end) return RDATA_OVERRUN;
        c++;
        t += len;
        pos += 1 + len;
    }
    *count = c;
    *total = t;
    return OK;
}

/* dns._decode_rdata's checks for [start, end).  With txt, the rendered name
 * of CNAME, NS, PTR, MX and SRV goes there (*txt_len stays -1 otherwise). */
static int check_rdata(const Parser *p, unsigned rtype, Py_ssize_t start, Py_ssize_t end,
                       char *txt, Py_ssize_t *txt_len) {
    const unsigned char *d = p->d;
    const Py_ssize_t len = end - start;
    Py_ssize_t stop, pos, count, total;
    int rc;
    if (len == 0 && rtype != TYPE_OPT) return OK; /* RFC 2136 deletions */
    switch (rtype) {
    case TYPE_A:
        return len == 4 ? OK : RDATA_OVERRUN;
    case TYPE_AAAA:
        return len == 16 ? OK : RDATA_OVERRUN;
    case TYPE_CNAME:
    case TYPE_NS:
    case TYPE_PTR:
    case TYPE_MX:
    case TYPE_SRV: {
        const Py_ssize_t skip = rtype == TYPE_MX ? 2 : rtype == TYPE_SRV ? 6 : 0;
        if (len < skip + 1) return RDATA_OVERRUN;
        Py_ssize_t k = 0;
        rc = name_in_rdata(p, start + skip, end, &stop, txt, &k);
        if (rc != OK) return rc;
        if (stop != end) return RDATA_OVERRUN;
        if (txt) *txt_len = k;
        return OK;
    }
    case TYPE_SOA:
        rc = name_in_rdata(p, start, end, &pos, NULL, NULL);
        if (rc != OK) return rc;
        rc = name_in_rdata(p, pos, end, &pos, NULL, NULL);
        if (rc != OK) return rc;
        return end - pos == 20 ? OK : RDATA_OVERRUN;
    case TYPE_TXT:
        return char_strings(d, start, end, &count, &total);
    case TYPE_OPT:
        return key_values(d, start, end);
    case TYPE_SVCB:
    case TYPE_HTTPS:
        if (len < 3) return RDATA_OVERRUN;
        rc = name_in_rdata(p, start + 2, end, &pos, NULL, NULL);
        if (rc != OK) return rc;
        return key_values(d, pos, end);
    case TYPE_LOC:
        return d[start] == 0 && len != 16 ? RDATA_OVERRUN : OK;
    default:
        return OK;
    }
}

/* str(ipaddress.IPv6Address(b)): RFC 5952 text, the longest run (first of
 * equal runs) of two or more zero groups as "::".  IPv4-mapped addresses are
 * left to ipaddress itself (Python 3.13 started writing them dotted). */
static PyObject *ipv6_text(const unsigned char *b) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (memcmp(b, mapped, 12) == 0) {
        PyObject *raw = PyBytes_FromStringAndSize((const char *)b, 16);
        if (!raw) return NULL;
        PyObject *addr = PyObject_CallOneArg(ipv6_address, raw);
        Py_DECREF(raw);
        if (!addr) return NULL;
        PyObject *s = PyObject_Str(addr);
        Py_DECREF(addr);
        return s;
    }
    unsigned g[8];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8; i++) g[i] = rd16(b + 2 * i);
    for (int i = 0; i < 8;) {
        if (g[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !g[j]) j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2) best = -1;
    char t[48];
    int k = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            t[k++] = ':';
            if (i == 0) t[k++] = ':';
            i += best_len - 1;
            continue;
        }
        k += snprintf(t + k, sizeof t - (size_t)k, "%x", g[i]);
        if (i < 7) t[k++] = ':';
    }
    return PyUnicode_DecodeASCII(t, k, NULL);
}

/* TXT text: the character-strings as latin-1, joined by one space. */
static PyObject *txt_text(const unsigned char *d, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t count = 0, total = 0;
    if (char_strings(d, start, end, &count, &total) != OK) Py_RETURN_NONE;
    const Py_ssize_t size = count ? total + count - 1 : 0;
    char small[512];
    char *t = size <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)size);
    if (!t) return PyErr_NoMemory();
    Py_ssize_t k = 0;
    for (Py_ssize_t pos = start; pos < end;) {
        const Py_ssize_t len = d[pos];
        if (pos > start) t[k++] = ' ';
        memcpy(t + k, d + pos + 1, (size_t)len);
        k += len;
        pos += 1 + len;
    }
    PyObject *s = PyUnicode_DecodeLatin1(t, k, NULL);
    if (t != small) PyMem_Free(t);
    return s;
}

/* The text of an answer whose rdata passed check_rdata (see
 * dns._answer_text); name_len >= 0 when check_rdata rendered a name. */
static PyObject *answer_text(const Parser *p, unsigned rtype, Py_ssize_t start, Py_ssize_t end,
                             const char *name, Py_ssize_t name_len) {
    const unsigned char *d = p->d;
    if (start == end) Py_RETURN_NONE; /* empty rdata is kept raw */
    switch (rtype) {
    case TYPE_A: {
        char t[16];
        int k = snprintf(t, sizeof t, "%u.%u.%u.%u", d[start], d[start + 1], d[start + 2],
                         d[start + 3]);
        return PyUnicode_DecodeASCII(t, k, NULL);
    }
    case TYPE_AAAA:
        return ipv6_text(d + start);
    case TYPE_CNAME:
    case TYPE_NS:
    case TYPE_PTR:
    case TYPE_MX:
    case TYPE_SRV:
        if (name_len < 0) Py_RETURN_NONE; /* not reached: check_rdata rendered it */
        return PyUnicode_DecodeASCII(name, name_len, NULL);
    case TYPE_TXT:
        return txt_text(d, start, end);
    case TYPE_DNAME: {
        char t[NAME_TEXT_MAX];
        Py_ssize_t stop, k = 0;
        if (read_name(d, end, start, end, 0, &stop, t, &k) != OK || stop != end) Py_RETURN_NONE;
        return PyUnicode_DecodeASCII(t, k, NULL);
    }
    default:
        Py_RETURN_NONE;
    }
}

typedef struct {
    Py_ssize_t pos;
    PyObject *answers; /* list of (rtype, ttl, text) */
    Py_ssize_t n_opt;
    uint32_t first_opt_ttl;
} Walk;

/* One resource record at w->pos (dns._Parser.record).  Returns OK, an anomaly
 * code that stops the walk, or -1 with a Python exception set. */
static int record(Parser *p, Walk *w, int section) {
    const unsigned char *d = p->d;
    Py_ssize_t pos;
    int rc = read_name(d, p->n, w->pos, p->n, 1, &pos, NULL, NULL);
    if (rc != OK) return rc;
    if (pos + 10 > p->n) return TRUNCATED_MESSAGE;
    const unsigned rtype = rd16(d + pos);
    const uint32_t ttl = rd32(d + pos + 4);
    const Py_ssize_t start = pos + 10, end = start + (Py_ssize_t)rd16(d + pos + 8);
    if (end > p->n) return TRUNCATED_MESSAGE;
    const int answer = section == 1;
    char name[NAME_TEXT_MAX];
    Py_ssize_t name_len = -1;
    rc = check_rdata(p, rtype, start, end, answer ? name : NULL, &name_len);
    if (rc != OK) note(p, rc); /* the record is kept with raw rdata: go on */
    if (section == 3 && rtype == TYPE_OPT && rc == OK && w->n_opt++ == 0) w->first_opt_ttl = ttl;
    if (answer) {
        PyObject *text;
        if (rc != OK) {
            text = Py_NewRef(Py_None);
        } else {
            text = answer_text(p, rtype, start, end, name, name_len);
            if (!text) return -1;
        }
        PyObject *item = Py_BuildValue("(IkN)", rtype, (unsigned long)ttl, text);
        if (!item) return -1;
        int err = PyList_Append(w->answers, item);
        Py_DECREF(item);
        if (err < 0) return -1;
    }
    w->pos = end;
    return OK;
}

/* The summary tuple of the n octets at d (the body of summarize). */
static PyObject *summarize_octets(const unsigned char *d, const Py_ssize_t n) {
    Parser p = {.d = d, .n = n};
    unsigned ident = 0, flags = 0, rcode = 0, counts[4] = {0, 0, 0, 0};
    PyObject *qname = NULL, *qtype = NULL, *qclass = NULL, *result = NULL;
    Walk w = {.pos = HEADER_LEN, .answers = PyList_New(0)};
    if (!w.answers) goto done;

    if (n < HEADER_LEN) { /* keep the ID and flags when they are present */
        if (n >= 2) ident = rd16(d);
        if (n >= 4) flags = rd16(d + 2);
        note(&p, TRUNCATED_MESSAGE);
        goto finish;
    }
    ident = rd16(d);
    flags = rd16(d + 2);
    for (int i = 0; i < 4; i++) counts[i] = rd16(d + 4 + 2 * i);

    /* dns._Parser.run: questions, then the three record sections. */
    Py_ssize_t cap = (n - w.pos) / MIN_QUESTION_LEN, todo = counts[0];
    if (todo > cap) {
        note(&p, TOO_MANY_RECORDS);
        todo = cap;
    }
    for (Py_ssize_t i = 0; i < todo; i++) {
        char text[NAME_TEXT_MAX];
        Py_ssize_t end, k = 0;
        int rc = read_name(d, n, w.pos, n, 1, &end, i == 0 ? text : NULL, &k);
        if (rc == OK && end + 4 > n) rc = TRUNCATED_MESSAGE;
        if (rc != OK) {
            note(&p, rc);
            goto finish;
        }
        if (i == 0) {
            qname = PyUnicode_DecodeASCII(text, k, NULL);
            qtype = PyLong_FromLong((long)rd16(d + end));
            qclass = PyLong_FromLong((long)rd16(d + end + 2));
            if (!qname || !qtype || !qclass) goto done;
        }
        w.pos = end + 4;
    }
    if (todo < counts[0]) goto finish;
    for (int section = 1; section <= 3; section++) {
        cap = (n - w.pos) / MIN_RECORD_LEN;
        todo = counts[section];
        if (todo > cap) {
            note(&p, TOO_MANY_RECORDS);
            todo = cap;
        }
        for (Py_ssize_t i = 0; i < todo; i++) {
            int rc = record(&p, &w, section);
            if (rc < 0) goto done;
            if (rc != OK) {
                note(&p, rc);
                goto finish;
            }
        }
        if (todo < counts[section]) goto finish;
    }
    if (w.pos < n) note(&p, TRAILING_BYTES);
finish:
    /* parse_message: the first OPT record's extended RCODE bits (RFC 6891). */
    rcode = flags & 0xF;
    if (w.n_opt) {
        rcode |= (w.first_opt_ttl >> 24) << 4;
        if (w.n_opt > 1) note(&p, MULTIPLE_OPT_RECORDS);
    }
    {
    PyObject *answers = PyList_AsTuple(w.answers);
    if (!answers) goto done;
    PyObject *anomalies = PyTuple_New(p.n_codes);
    if (!anomalies) {
        Py_DECREF(answers);
        goto done;
    }
    for (int i = 0; i < p.n_codes; i++)
        PyTuple_SET_ITEM(anomalies, i, Py_NewRef(code_str[p.order[i]]));
    result = Py_BuildValue("(III(IIII)OOONN)", ident, flags, rcode, counts[0], counts[1],
                           counts[2], counts[3], qname ? qname : Py_None,
                           qtype ? qtype : Py_None, qclass ? qclass : Py_None, answers,
                           anomalies);
}
done:
    Py_XDECREF(qname);
    Py_XDECREF(qtype);
    Py_XDECREF(qclass);
    Py_XDECREF(w.answers);
    return result;
}

static PyObject *summarize(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (get_buffer(arg, &view, 1, "data") < 0) return NULL;
    PyObject *result = summarize_octets((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return result;
}

/* summarize_many(buf, starts, lens): [summarize(buf[o:o + n]) for o, n in
 * zip(starts, lens)] without a slice object per message.  Every (o, n) is
 * checked against the buffer before any message is read. */
static PyObject *summarize_many(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *buf, *starts_arg, *lens_arg;
    if (!PyArg_ParseTuple(args, "OOO:summarize_many", &buf, &starts_arg, &lens_arg)) return NULL;
    Py_buffer view;
    if (get_buffer(buf, &view, 1, "buf") < 0) return NULL;
    PyObject *starts = NULL, *lens = NULL, *result = NULL;
    Py_ssize_t *pos = NULL;
    starts = PySequence_Fast(starts_arg, "starts must be a sequence of ints");
    if (!starts) goto done;
    lens = PySequence_Fast(lens_arg, "lens must be a sequence of ints");
    if (!lens) goto done;
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(starts);
    if (PySequence_Fast_GET_SIZE(lens) != count) {
        PyErr_SetString(PyExc_ValueError, "starts and lens differ in length");
        goto done;
    }
    pos = PyMem_New(Py_ssize_t, 2 * (size_t)count + 1);
    if (!pos) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* out-of-range ints clamp to PY_SSIZE_T_MIN/MAX and fail the bounds check */
        const Py_ssize_t o = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(starts, i), NULL);
        if (o == -1 && PyErr_Occurred()) goto done;
        const Py_ssize_t len = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(lens, i), NULL);
        if (len == -1 && PyErr_Occurred()) goto done;
        if (o < 0 || len < 0 || o > view.len - len) {
            PyErr_Format(PyExc_ValueError,
                         "message %zd: offset %zd, length %zd outside a buffer of %zd octets", i,
                         o, len, view.len);
            goto done;
        }
        pos[2 * i] = o;
        pos[2 * i + 1] = len;
    }
    result = PyList_New(count);
    if (!result) goto done;
    const unsigned char *d = (const unsigned char *)view.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *s = summarize_octets(d + pos[2 * i], pos[2 * i + 1]);
        if (!s) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, s);
    }
done:
    PyMem_Free(pos);
    Py_XDECREF(starts);
    Py_XDECREF(lens);
    PyBuffer_Release(&view);
    return result;
}

/* ---------------------------------------------------------------- flow_step
 *
 * A transliteration of netsift.applayer.dns_flow_step, operation for operation:
 * item access, arithmetic, comparisons and truth tests go through the abstract
 * object API (so a list subclass state, a dict subclass of flows or int
 * subclasses behave as in Python); only exact lists, dicts and ints take fast
 * paths with the same result.  One difference: the anomaly list st[7] must be
 * an exact list (Python would call any object's extend with a generator).
 */

static PyObject *idx[9];        /* the ints 0..8, as item indexes */
static PyObject *int_one;       /* 1 */
static PyObject *int_thousand;  /* 1000 */
static PyObject *new_state_arg; /* (0, 0, None, None, None, None, None, None) */
static PyObject *str_get, *str_pop, *str_setdefault;

static binaryfunc list_subscript;     /* list's o[i] */
static objobjargproc list_ass_subscript; /* list's o[i] = v */

static PyObject *list_getitem;   /* list.__getitem__ */
static PyObject *str_getitem;    /* "__getitem__" */
static PyTypeObject *plain_type; /* the last list subclass found to keep list's o[i] */
static unsigned int plain_tag;   /* its version tag then (any change to the type drops it) */

/* A list, or a list subclass that keeps list's o[i] (as _DnsState does).  A
 * subclass's o[i] calls the __getitem__ its MRO finds, list's own method here
 * (list defines it as a method, so the subclass slot is never list's), so reading
 * the list directly gives the same result without a method call. */
static int plain_list_get(PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    if (t == &PyList_Type) return 1;
    if (!PyList_Check(o)) return 0;
    if (t == plain_type && (t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) &&
        t->tp_version_tag == plain_tag)
        return 1;
    if (t->tp_as_mapping->mp_subscript != list_subscript &&
        _PyType_Lookup(t, str_getitem) != list_getitem)
        return 0;
    if (t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) {
        Py_INCREF(t);
        Py_XSETREF(plain_type, t);
        plain_tag = t->tp_version_tag;
    }
    return 1;
}

static inline PyObject *item(PyObject *o, int i) { /* new reference: o[i] */
    if (PyTuple_CheckExact(o) && i < PyTuple_GET_SIZE(o))
        return Py_NewRef(PyTuple_GET_ITEM(o, i));
    if (plain_list_get(o) && i < PyList_GET_SIZE(o)) return Py_NewRef(PyList_GET_ITEM(o, i));
    return PyObject_GetItem(o, idx[i]);
}

static inline int set_item(PyObject *o, int i, PyObject *v) { /* o[i] = v */
    if (PyList_Check(o) && Py_TYPE(o)->tp_as_mapping->mp_ass_subscript == list_ass_subscript &&
        i < PyList_GET_SIZE(o))
        return PyList_SetItem(o, i, Py_NewRef(v));
    return PyObject_SetItem(o, idx[i], v);
}

/* o[i] is None: 1, 0, or -1 with an exception set. */
static int item_is_none(PyObject *o, int i) {
    PyObject *v = item(o, i);
    if (!v) return -1;
    const int none = v == Py_None;
    Py_DECREF(v);
    return none;
}

/* o[i] += 1 */
static int increment(PyObject *o, int i) {
    PyObject *v = item(o, i);
    if (!v) return -1;
    PyObject *w = PyNumber_InPlaceAdd(v, int_one);
    Py_DECREF(v);
    if (!w) return -1;
    const int rc = set_item(o, i, w);
    Py_DECREF(w);
    return rc;
}

static int append_index(PyObject *list, Py_ssize_t k) {
    PyObject *v = PyLong_FromSsize_t(k);
    if (!v) return -1;
    const int rc = PyList_Append(list, v);
    Py_DECREF(v);
    return rc;
}

/* not s[1] & 0x8000: 1 (a query), 0 (a response), -1 on error. */
static int is_query(PyObject *flags) {
    if (PyLong_CheckExact(flags)) {
        int overflow;
        const long long v = PyLong_AsLongLongAndOverflow(flags, &overflow);
        if (!overflow) {
            if (v == -1 && PyErr_Occurred()) return -1;
            return !(v & 0x8000); /* two's complement, as Python's & */
        }
    }
    PyObject *mask = PyLong_FromLong(0x8000);
    if (!mask) return -1;
    PyObject *bit = PyNumber_And(flags, mask);
    Py_DECREF(mask);
    if (!bit) return -1;
    const int truth = PyObject_IsTrue(bit);
    Py_DECREF(bit);
    return truth < 0 ? -1 : !truth;
}

/* max(0, now - sent) // 1000, a new reference. */
static PyObject *rtt_of(PyObject *now, PyObject *sent) {
    if (PyLong_CheckExact(now) && PyLong_CheckExact(sent)) {
        int o1, o2;
        const long long a = PyLong_AsLongLongAndOverflow(now, &o1);
        const long long b = PyLong_AsLongLongAndOverflow(sent, &o2);
        long long diff;
        if (!o1 && !o2 && !__builtin_sub_overflow(a, b, &diff))
            return PyLong_FromLongLong(diff > 0 ? diff / 1000 : 0); /* diff >= 0: / is // */
        if (PyErr_Occurred()) return NULL;
    }
    PyObject *diff = PyNumber_Subtract(now, sent);
    if (!diff) return NULL;
    /* builtin max keeps the first argument unless a later one is greater */
    PyObject *zero = idx[0];
    const int greater = PyObject_RichCompareBool(diff, zero, Py_GT);
    if (greater < 0) {
        Py_DECREF(diff);
        return NULL;
    }
    PyObject *rtt = PyNumber_FloorDivide(greater ? diff : zero, int_thousand);
    Py_DECREF(diff);
    return rtt;
}

/* st[7].extend(a for a in anomalies if a not in st[7]) */
static int add_anomalies(PyObject *st, PyObject *anomalies) {
    int none = item_is_none(st, 7);
    if (none < 0) return -1;
    if (none) {
        PyObject *fresh = PyList_New(0);
        if (!fresh) return -1;
        const int rc = set_item(st, 7, fresh);
        Py_DECREF(fresh);
        if (rc < 0) return -1;
    }
    PyObject *target = item(st, 7);
    if (!target) return -1;
    if (!PyList_CheckExact(target)) {
        PyErr_Format(PyExc_TypeError, "a DNS state's anomalies (item 7) must be a list, not %.100s",
                     Py_TYPE(target)->tp_name);
        Py_DECREF(target);
        return -1;
    }
    PyObject *it = PyObject_GetIter(anomalies);
    if (!it) {
        Py_DECREF(target);
        return -1;
    }
    PyObject *a;
    int rc = 0;
    while ((a = PyIter_Next(it))) {
        PyObject *current = item(st, 7); /* the generator reads st[7] each time */
        int has = current ? PySequence_Contains(current, a) : -1;
        Py_XDECREF(current);
        if (has == 0) has = PyList_Append(target, a);
        Py_DECREF(a);
        if (has < 0) {
            rc = -1;
            break;
        }
    }
    if (!rc && PyErr_Occurred()) rc = -1;
    Py_DECREF(it);
    Py_DECREF(target);
    return rc;
}

/* flows.get(key) as a new reference (None when absent) */
static PyObject *flows_get(PyObject *flows, PyObject *key) {
    if (PyDict_CheckExact(flows)) {
        PyObject *v = PyDict_GetItemWithError(flows, key);
        if (v) return Py_NewRef(v);
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    return PyObject_CallMethodOneArg(flows, str_get, key);
}

/* One query: the body of the `if not s[1] & 0x8000` branch. */
static int query(PyObject *st, PyObject *s, PyObject *q_at, Py_ssize_t k, PyObject *ts,
                 long long max_outstanding) {
    if (increment(st, 0) < 0) return -1;
    PyObject *qname = item(s, 4);
    if (!qname) return -1;
    const int has_name = qname != Py_None;
    Py_DECREF(qname);
    if (has_name) {
        if (append_index(q_at, k) < 0) return -1;
        const int none = item_is_none(st, 2);
        if (none < 0) return -1;
        if (none) {
            PyObject *name = item(s, 4);
            if (!name) return -1;
            PyObject *qtype = item(s, 5);
            if (!qtype) {
                Py_DECREF(name);
                return -1;
            }
            int rc = set_item(st, 2, name);
            if (rc == 0) rc = set_item(st, 3, qtype);
            Py_DECREF(name);
            Py_DECREF(qtype);
            if (rc < 0) return -1;
        }
    }
    PyObject *pending = item(st, 6);
    if (!pending) return -1;
    if (pending == Py_None) {
        Py_DECREF(pending);
        pending = PyDict_New();
        if (!pending) return -1;
        if (set_item(st, 6, pending) < 0) goto fail;
    }
    const Py_ssize_t size = PyObject_Size(pending);
    if (size < 0) goto fail;
    if ((long long)size < max_outstanding) {
        PyObject *ident = item(s, 0);
        if (!ident) goto fail;
        PyObject *when = PySequence_GetItem(ts, k);
        if (!when) {
            Py_DECREF(ident);
            goto fail;
        }
        PyObject *r;
        if (PyDict_CheckExact(pending)) {
            r = PyDict_SetDefault(pending, ident, when);
            Py_XINCREF(r); /* borrowed */
        } else {
            r = PyObject_CallMethodObjArgs(pending, str_setdefault, ident, when, NULL);
        }
        Py_DECREF(ident);
        Py_DECREF(when);
        if (!r) goto fail;
        Py_DECREF(r);
    }
    Py_DECREF(pending);
    return 0;
fail:
    Py_DECREF(pending);
    return -1;
}

/* One response: the body of the `else` branch. */
static int response(PyObject *st, PyObject *s, PyObject *r_at, PyObject *rtts, Py_ssize_t k,
                    PyObject *ts) {
    if (increment(st, 1) < 0) return -1;
    if (append_index(r_at, k) < 0) return -1;
    PyObject *pending = item(st, 6);
    if (!pending) return -1;
    PyObject *sent = NULL;
    const int truth = PyObject_IsTrue(pending);
    if (truth < 0) goto fail;
    if (truth) {
        PyObject *ident = item(s, 0);
        if (!ident) goto fail;
        if (PyDict_CheckExact(pending) && PyLong_CheckExact(ident)) {
            sent = PyDict_GetItemWithError(pending, ident);
            if (sent) {
                Py_INCREF(sent);
                if (PyDict_DelItem(pending, ident) < 0) Py_CLEAR(sent);
            } else if (!PyErr_Occurred()) {
                sent = Py_NewRef(Py_None);
            }
        } else {
            sent = PyObject_CallMethodObjArgs(pending, str_pop, ident, Py_None, NULL);
        }
        Py_DECREF(ident);
        if (!sent) goto fail;
    }
    if (sent && sent != Py_None) {
        PyObject *now = PySequence_GetItem(ts, k);
        if (!now) goto fail;
        PyObject *rtt = rtt_of(now, sent);
        Py_DECREF(now);
        if (!rtt) goto fail;
        int rc = PyList_Append(rtts, rtt);
        if (rc == 0) {
            rc = item_is_none(st, 5);
            if (rc > 0) rc = set_item(st, 5, rtt);
        }
        Py_DECREF(rtt);
        if (rc < 0) goto fail;
    }
    Py_XDECREF(sent);
    Py_DECREF(pending);
    const int none = item_is_none(st, 4);
    if (none < 0) return -1;
    return none ? set_item(st, 4, s) : 0;
fail:
    Py_XDECREF(sent);
    Py_DECREF(pending);
    return -1;
}

static PyObject *flow_step(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *flows, *codes, *msgs, *ts, *make, *limit;
    if (!PyArg_ParseTuple(args, "O!OOOOO!:flow_step", &PyDict_Type, &flows, &codes, &msgs, &ts,
                          &make, &PyLong_Type, &limit))
        return NULL;
    if (!PySequence_Check(codes) || !PySequence_Check(ts)) {
        PyErr_SetString(PyExc_TypeError, "flow_step: codes and ts must be sequences");
        return NULL;
    }
    int overflow;
    long long max_outstanding = PyLong_AsLongLongAndOverflow(limit, &overflow);
    if (max_outstanding == -1 && PyErr_Occurred()) return NULL;
    if (overflow) max_outstanding = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    PyObject *q_at = PyList_New(0), *r_at = PyList_New(0), *rtts = PyList_New(0);
    PyObject *it = NULL, *s = NULL, *st = NULL, *key = NULL;
    if (!q_at || !r_at || !rtts) goto fail;
    it = PyObject_GetIter(msgs);
    if (!it) goto fail;
    for (Py_ssize_t k = 0; (s = PyIter_Next(it)); k++) {
        PyObject *code = PySequence_GetItem(codes, k);
        if (!code) goto fail;
        key = PyNumber_Rshift(code, int_one);
        Py_DECREF(code);
        if (!key) goto fail;
        st = flows_get(flows, key);
        if (!st) goto fail;
        if (st == Py_None) {
            Py_DECREF(st);
            st = PyObject_CallOneArg(make, new_state_arg);
            if (!st || PyObject_SetItem(flows, key, st) < 0) goto fail;
        }
        Py_CLEAR(key);
        PyObject *anomalies = item(s, 8);
        if (!anomalies) goto fail;
        int truth = PyObject_IsTrue(anomalies);
        if (truth > 0) truth = add_anomalies(st, anomalies);
        Py_DECREF(anomalies);
        if (truth < 0) goto fail;
        PyObject *flags = item(s, 1);
        if (!flags) goto fail;
        const int q = is_query(flags);
        Py_DECREF(flags);
        if (q < 0) goto fail;
        if ((q ? query(st, s, q_at, k, ts, max_outstanding)
               : response(st, s, r_at, rtts, k, ts)) < 0)
            goto fail;
        Py_CLEAR(st);
        Py_CLEAR(s);
    }
    if (PyErr_Occurred()) goto fail;
    Py_DECREF(it);
    return Py_BuildValue("(NNN)", q_at, r_at, rtts);
fail:
    Py_XDECREF(key);
    Py_XDECREF(st);
    Py_XDECREF(s);
    Py_XDECREF(it);
    Py_XDECREF(q_at);
    Py_XDECREF(r_at);
    Py_XDECREF(rtts);
    return NULL;
}

static PyMethodDef methods[] = {
    {"summarize", summarize, METH_O,
     "summarize(data, /) -> (id, flags, rcode, counts, qname, qtype, qclass, answers, "
     "anomalies)\n\nThe fields of netsift.dns.DnsSummary for one DNS message; never raises on "
     "bad input."},
    {"summarize_many", summarize_many, METH_VARARGS,
     "summarize_many(buf, starts, lens, /) -> list\n\n[summarize(buf[o:o + n]) for o, n in "
     "zip(starts, lens)], reading buf in place; ValueError when an (o, n) leaves buf."},
    {"flow_step", flow_step, METH_VARARGS,
     "flow_step(flows, codes, msgs, ts, make, max_outstanding, /) -> (q_at, r_at, rtts)\n\n"
     "netsift.applayer.dns_flow_step, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dns", "DNS message summaries, in C (see netsift.dns.summarize).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__dns(void) {
    if (!ipv6_address) {
        PyObject *ipaddress = PyImport_ImportModule("ipaddress");
        if (!ipaddress) return NULL;
        ipv6_address = PyObject_GetAttrString(ipaddress, "IPv6Address");
        Py_DECREF(ipaddress);
        if (!ipv6_address) return NULL;
    }
    for (int i = 1; i < N_CODES; i++) {
        if (!code_str[i] && !(code_str[i] = PyUnicode_InternFromString(code_names[i])))
            return NULL;
    }
    for (int i = 0; i < 9; i++) {
        if (!idx[i] && !(idx[i] = PyLong_FromLong(i))) return NULL;
    }
    if (!str_getitem && !(str_getitem = PyUnicode_InternFromString("__getitem__"))) return NULL;
    if (!list_getitem) {
        list_getitem = PyDict_GetItemWithError(PyList_Type.tp_dict, str_getitem);
        if (!list_getitem) return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_SystemError, "list.__getitem__");
        Py_INCREF(list_getitem);
    }
    list_subscript = PyList_Type.tp_as_mapping->mp_subscript;
    list_ass_subscript = PyList_Type.tp_as_mapping->mp_ass_subscript;
    if (!int_one && !(int_one = PyLong_FromLong(1))) return NULL;
    if (!int_thousand && !(int_thousand = PyLong_FromLong(1000))) return NULL;
    if (!new_state_arg &&
        !(new_state_arg = Py_BuildValue("(iiOOOOOO)", 0, 0, Py_None, Py_None, Py_None, Py_None,
                                        Py_None, Py_None)))
        return NULL;
    if (!str_get && !(str_get = PyUnicode_InternFromString("get"))) return NULL;
    if (!str_pop && !(str_pop = PyUnicode_InternFromString("pop"))) return NULL;
    if (!str_setdefault && !(str_setdefault = PyUnicode_InternFromString("setdefault")))
        return NULL;
    return PyModule_Create(&module);
}
