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

static PyObject *summarize(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (get_buffer(arg, &view, 1, "data") < 0) return NULL;
    Parser p = {.d = (const unsigned char *)view.buf, .n = view.len};
    const unsigned char *d = p.d;
    const Py_ssize_t n = p.n;
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
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"summarize", summarize, METH_O,
     "summarize(data, /) -> (id, flags, rcode, counts, qname, qtype, qclass, answers, "
     "anomalies)\n\nThe fields of netsift.dns.DnsSummary for one DNS message; never raises on "
     "bad input."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dns", "DNS message summaries, in C (see netsift.dns.summarize).", -1,
    methods,
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
    return PyModule_Create(&module);
}
