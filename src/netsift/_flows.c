/*
 * _flows.c: the per-packet flow engine of netsift.flows.FlowTable, in C.
 *
 * Same results as netsift.flows.FlowTable for every input (that Python code
 * is the specification; tests/test_flows_c.py holds the two together): the
 * same keys, originator choice, Zeek endpoint states and history letters,
 * Zeek sizes, Wireshark analysis counters, expiry rules and LRU cap, and the
 * finished flows as tuples in the flows.RAW_FIELDS layout, in the same order.
 *
 * Flows live in a slab (array with a free list) found through an
 * open-addressing hash table (linear probing, backward-shift deletion, keyed
 * hash); each flow is on one of three intrusive doubly linked LRU lists (its
 * timeout class).  No Python object and no allocation per packet: memory
 * grows by doubling up to max_flows + 1 flows.  The only packet bytes read
 * are the ICMP identifier, inside the record's captured bytes.
 *
 * Table(max_flows, vlan_in_key, server_ports, timeouts, seed)
 *   server_ports: 65536-byte bitmap (non-zero = likely server port);
 *   timeouts: (tcp, udp, icmp, other, attempt, close, active) in ns, int64.
 * Table.update(columns, buf, off, caplen, file_index, frames)
 *   columns: tuple of the PacketColumns arrays named in COLS below, in order;
 *   frames None: a decoded batch (rows = IP and not a fragment, skipped
 *   counters, then the expiry sweep); frames an int64 array (m, 2): decoded
 *   reassembled datagrams (rows = IP; (file, frame) of row j's completing
 *   fragment in frames[j]).
 * Table.finish(), Table.drain() -> list of tuples, Table.counters() -> tuple.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_buffers.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define P_ICMP 1
#define P_TCP 6
#define P_UDP 17
#define P_ICMP6 58

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

enum { INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET };
enum {
    RETRANS, FAST_RETRANS, SPURIOUS, OUT_OF_ORDER, DUP_ACK, ZERO_WINDOW, ZERO_WINDOW_PROBE,
    KEEP_ALIVE, LOST_SEGMENT, ACKED_UNSEEN, N_COUNTS
};
/* flows.EXPIRATIONS order */
enum { X_IDLE, X_ACTIVE, X_ATTEMPT, X_CLOSED, X_PORT_REUSE, X_EVICTED, X_END, N_EXPIRATIONS };
static const char *const EXPIRATION_NAMES[N_EXPIRATIONS] = {
    "idle_timeout", "active_timeout", "attempt_timeout", "closed", "port_reuse", "evicted",
    "end_of_capture",
};
/* flows.SKIP_REASONS order */
enum { S_NOT_IP, S_FRAGMENT, S_NO_L4, N_SKIPS };
/* timeout classes (one LRU list each) */
enum { CLS_SHORT, CLS_TCP, CLS_OTHER, N_CLS };

#define HISTORY_MAX 100
#define OOO_NS 3000000LL
#define FAST_RETRANS_NS 20000000LL
#define TOO_LARGE_SEQ_DELTA 1048576
#define NIL UINT32_MAX
#define N_TIMEOUTS 7
#define N_RAW 37

/* Input columns: PacketColumns names and item sizes, in the order update() takes them. */
enum {
    C_IP_VERSION, C_IS_FRAGMENT, C_FRAME, C_TS_NS, C_SRC_HI, C_SRC_LO, C_DST_HI, C_DST_LO,
    C_PROTO, C_IP_LEN, C_L4_OFF, C_SPORT, C_DPORT, C_FLAGS, C_SEQ, C_ACK, C_WINDOW,
    C_ICMP_TYPE, C_ICMP_CODE, C_PAYLOAD_LEN, C_VLAN_DEPTH, C_VLAN_OUTER, C_VLAN_INNER, N_COLS
};
static const char *const COL_NAMES[N_COLS] = {
    "ip_version", "is_fragment", "frame", "ts_ns", "ip_src_hi", "ip_src_lo", "ip_dst_hi",
    "ip_dst_lo", "ip_proto", "ip_len", "l4_off", "sport", "dport", "tcp_flags", "tcp_seq",
    "tcp_ack", "tcp_window", "icmp_type", "icmp_code", "payload_len", "vlan_depth",
    "vlan_outer", "vlan_inner",
};
static const Py_ssize_t COL_ITEMSIZE[N_COLS] = {
    1, 1, 8, 8, 8, 8, 8, 8, 1, 4, 4, 2, 2, 2, 4, 4, 2, 1, 1, 4, 1, 2, 2,
};

typedef struct {
    uint32_t start, last, ack;
    uint32_t ws_next, ws_maxack, ws_lastack, ws_window;
    uint32_t seen_end; /* end of the highest segment seen (0: none) */
    int64_t last_wraps, ack_wraps, fin_cnt;
    int64_t hist_last_syn, hist_last_fin, hist_last_rst;
    int64_t rxmit, rxmit_thr, zw, zw_thr, gap, gap_thr;
    int64_t ws_next_ns, ws_lastack_ns, ws_dupacks;
    int64_t counts[N_COUNTS];
    uint8_t state, prev_state, did_close;
    uint8_t ws_window_valid;
    uint8_t ws_last_keep_alive, ws_last_probe; /* this side's last segment was one */
} Endpoint;

typedef struct {
    uint64_t hi1, lo1, hi2, lo2;
    int32_t p1, p2, icmp_id, vlan;
    int32_t proto;
} Key;

typedef struct {
    Key key;
    uint64_t hash;
    uint64_t o_hi, o_lo, r_hi, r_lo;
    int64_t o_p, r_p, icmp_id, vlan, vlan_inner;
    int64_t start_ns, end_ns, seen_ns, attempt_ns;
    int64_t syn_ns, irtt_ns; /* latest SYN without ACK (-1: none); initial RTT (0: unknown) */
    int64_t first_file, first_frame, last_file, last_frame, reassembled;
    int64_t pkts[2], ip_bytes[2], payload[2];
    uint64_t hist_seen; /* bit (letter - 'A') per letter recorded by CheckHistory */
    uint32_t prev, next; /* LRU links (next doubles as the free-list link) */
    uint8_t cls, flipped, active[2], hist_len;
    char hist[HISTORY_MAX];
    Endpoint ep[2]; /* originator, responder (TCP only) */
    /* not cleared by new_flow: */
    int64_t due;  /* deadline of the flow's live entry in the deadline heap (INT64_MAX: none) */
    uint32_t gen; /* bumped when the slot's flow ends: older heap entries are stale */
} Flow;

typedef struct {
    int64_t due;
    uint32_t idx, gen;
} Due;

typedef struct {
    PyObject_HEAD
    Flow *flows;
    uint32_t n_alloc; /* slots in flows */
    uint32_t n_used;  /* slots ever handed out (free list below it) */
    uint32_t free_head;
    uint64_t *slots; /* hash table: (hash >> 32) << 32 | (flow index + 1); 0 = empty */
    uint64_t slot_mask;
    uint64_t live;
    uint64_t max_flows;
    uint32_t head[N_CLS], tail[N_CLS]; /* head = least recently active */
    uint64_t seed;
    PyObject *cid_seed; /* int: Community ID seed, appended to every record */
    int vlan_in_key;
    int auto_sweep; /* sweep (from the least recently active, stopping at a live one) after update */
    uint8_t server_ports[65536];
    int64_t tcp_ns, udp_ns, icmp_ns, other_ns, attempt_ns, close_ns, active_ns;
    int64_t now;
    long long skipped[N_SKIPS];
    long long expired[N_EXPIRATIONS];
    long long flows_created, peak_flows;
    PyObject *finished; /* list of raw tuples */
    Due *heap; /* min-heap of flow deadlines (advance ends every flow due, in any list order) */
    size_t heap_n, heap_cap;
    PyObject *reasons[N_EXPIRATIONS];
} Table;

/* --- helpers ------------------------------------------------------------------- */
static inline int32_t sdelta(uint32_t a, uint32_t b) { return (int32_t)(a - b); }

static inline uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}
static inline uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v * 0x9E3779B97F4A7C15ULL;
    h = (h << 27) | (h >> 37);
    return h * 0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL;
}
static inline uint64_t key_hash(const Table *t, const Key *k) {
    uint64_t h = t->seed;
    h = mix(h, k->hi1);
    h = mix(h, k->lo1);
    h = mix(h, k->hi2);
    h = mix(h, k->lo2);
    h = mix(h, ((uint64_t)(uint32_t)k->p1 << 32) | (uint32_t)k->p2);
    h = mix(h, ((uint64_t)(uint32_t)k->icmp_id << 32) | (uint32_t)k->vlan);
    h = mix(h, (uint64_t)(uint32_t)k->proto);
    return fmix64(h);
}
static inline int key_eq(const Key *a, const Key *b) {
    return a->hi1 == b->hi1 && a->lo1 == b->lo1 && a->hi2 == b->hi2 && a->lo2 == b->lo2 &&
           a->p1 == b->p1 && a->p2 == b->p2 && a->icmp_id == b->icmp_id && a->vlan == b->vlan &&
           a->proto == b->proto;
}

/* ICMP type pairing (flows._ICMP_PAIRS / _ICMP_REPLIES / _ICMP_ID_TYPES); -1 = none. */
static inline int icmp_pair(int proto, int t) {
    if (proto == P_ICMP) {
        switch (t) {
        case 8: return 0;
        case 13: return 14;
        case 15: return 16;
        case 17: return 18;
        case 10: return 9;
        default: return -1;
        }
    }
    switch (t) {
    case 128: return 129;
    case 133: return 134;
    case 135: return 136;
    case 130: return 131;
    default: return -1;
    }
}
static inline int icmp_reply_of(int proto, int t) {
    if (proto == P_ICMP) {
        switch (t) {
        case 0: return 8;
        case 14: return 13;
        case 16: return 15;
        case 18: return 17;
        case 9: return 10;
        default: return -1;
        }
    }
    switch (t) {
    case 129: return 128;
    case 134: return 133;
    case 136: return 135;
    case 131: return 130;
    default: return -1;
    }
}
static inline int icmp_has_id(int proto, int t) {
    if (proto == P_ICMP)
        return t == 0 || t == 8 || t == 13 || t == 14 || t == 15 || t == 16 || t == 17 || t == 18;
    return t == 128 || t == 129;
}

/* --- per-flow state -------------------------------------------------------------- */
static void ep_init(Endpoint *e) {
    memset(e, 0, sizeof(*e));
    e->hist_last_syn = e->hist_last_fin = e->hist_last_rst = -1;
    e->rxmit_thr = e->zw_thr = e->gap_thr = 1;
}
static inline void set_state(Endpoint *e, int s) {
    e->prev_state = e->state;
    e->state = (uint8_t)s;
}
static inline void init_seqs(Endpoint *e, uint32_t start, uint32_t last) {
    e->start = start;
    e->ack = start;
    e->ack_wraps = 0;
    e->last = last;
    e->last_wraps = 0;
}
static int64_t ep_size(const Endpoint *e) {
    int64_t last64 = (int64_t)((uint64_t)e->last_wraps << 32) + (int64_t)e->last;
    int64_t ack64 = (int64_t)((uint64_t)e->ack_wraps << 32) + (int64_t)e->ack;
    int64_t top = last64 > ack64 ? last64 : ack64;
    int64_t size = top - (int64_t)e->start;
    if (size < 0) size = (int64_t)((uint64_t)size & 0xFFFFFFFFULL);
    if (size > 0) size -= 1;
    if (e->fin_cnt > 0 && size > 0) size -= 1;
    return size;
}
/* Zeek ScaledHistoryEntry: true on the 1st, 10th, 100th, ... occurrence. */
static inline int scaled(int64_t *cnt, int64_t *thr) {
    *cnt += 1;
    if (*cnt == *thr) {
        *thr *= 10;
        return 1;
    }
    return 0;
}
static inline void add_history(Flow *f, char c) {
    if (f->hist_len < HISTORY_MAX) f->hist[f->hist_len++] = c;
}
static inline char lower(char c) { return (char)(c + ('a' - 'A')); }
/* Zeek CheckHistory: record once per direction; 1 if already seen. */
static inline int check_history(Flow *f, int is_orig, char code) {
    char c = is_orig ? code : lower(code);
    uint64_t bit = 1ULL << (unsigned)(c - 'A');
    if (f->hist_seen & bit) return 1;
    f->hist_seen |= bit;
    add_history(f, c);
    return 0;
}

static inline int close_complete(const Flow *f) {
    if (f->key.proto != P_TCP) return 0;
    const Endpoint *o = &f->ep[0], *r = &f->ep[1];
    if (!(o->did_close || r->did_close)) return 0;
    return (o->did_close && r->did_close) || o->state == RESET || r->state == RESET ||
           o->state == INACTIVE || r->state == INACTIVE;
}
static inline int attempt(const Flow *f) {
    if (f->key.proto != P_TCP) return 0;
    const Endpoint *o = &f->ep[0], *r = &f->ep[1];
    return (o->state == SYN_SENT || o->state == SYN_ACK_SENT) && r->state == INACTIVE;
}
static inline int flow_class(const Flow *f) {
    if (f->key.proto != P_TCP) return CLS_OTHER;
    if (close_complete(f) || attempt(f)) return CLS_SHORT;
    return CLS_TCP;
}
static inline int64_t idle_ns(const Table *t, int proto) {
    switch (proto) {
    case P_TCP: return t->tcp_ns;
    case P_UDP: return t->udp_ns;
    case P_ICMP: case P_ICMP6: return t->icmp_ns;
    default: return t->other_ns;
    }
}

/* Zeek TCPSessionAdapter::IsReuse for a SYN (or a SYN-ACK on a half connection). */
static int is_reuse(const Flow *f, int flags, uint32_t seq) {
    const Endpoint *o = &f->ep[0], *r = &f->ep[1];
    const Endpoint *conn_orig = o;
    if (flags & F_ACK) {
        if (o->state != INACTIVE) return 0;
        conn_orig = r;
    }
    if (!(o->did_close || r->did_close)) {
        if (seq == conn_orig->start) return 0;
        /* SYN and SYN-ACK seen in swapped order */
        if (!(flags & F_ACK) && conn_orig->state == SYN_ACK_SENT && r->state == INACTIVE &&
            seq == r->start)
            return 0;
    }
    return 1;
}

/* Why f ended before a packet at ts arrived (X_*), or -1 if the packet belongs to it. */
static int expired_before(const Table *t, const Flow *f, int64_t ts, int proto, int flags,
                          uint32_t seq) {
    if (proto == P_TCP) {
        if (close_complete(f)) {
            if (ts - f->seen_ns > t->close_ns) return X_CLOSED;
        } else if (attempt(f) && f->attempt_ns >= 0 && ts - f->attempt_ns > t->attempt_ns) {
            return X_ATTEMPT;
        }
    }
    if (ts - f->seen_ns > idle_ns(t, f->key.proto)) return X_IDLE;
    if (t->active_ns && ts - f->start_ns > t->active_ns) return X_ACTIVE;
    if (proto == P_TCP && (flags & F_SYN) && is_reuse(f, flags, seq)) return X_PORT_REUSE;
    return -1;
}

/* The first time at which expired_before(f, ts, proto, 0, 0) is not -1 (its tests are
   "ts - x > T"); INT64_MAX when none applies. */
static inline int64_t plus1(int64_t a, int64_t b) {
    return a > INT64_MAX - b - 1 ? INT64_MAX : a + b + 1;
}
static int64_t deadline(const Table *t, const Flow *f) {
    int64_t d = INT64_MAX, x;
    if (f->key.proto == P_TCP) {
        if (close_complete(f)) d = plus1(f->seen_ns, t->close_ns);
        else if (attempt(f) && f->attempt_ns >= 0) d = plus1(f->attempt_ns, t->attempt_ns);
    }
    x = plus1(f->seen_ns, idle_ns(t, f->key.proto));
    if (x < d) d = x;
    if (t->active_ns) {
        x = plus1(f->start_ns, t->active_ns);
        if (x < d) d = x;
    }
    return d;
}

/* --- deadline heap ----------------------------------------------------------------- */
static int heap_push(Table *t, int64_t due, uint32_t idx) {
    if (t->heap_n == t->heap_cap) {
        size_t cap = t->heap_cap ? t->heap_cap * 2 : 1024;
        Due *nh = PyMem_Realloc(t->heap, cap * sizeof(Due));
        if (nh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->heap = nh;
        t->heap_cap = cap;
    }
    Due e = {due, idx, t->flows[idx].gen};
    size_t k = t->heap_n++;
    while (k > 0) {
        size_t up = (k - 1) / 2;
        if (t->heap[up].due <= due) break;
        t->heap[k] = t->heap[up];
        k = up;
    }
    t->heap[k] = e;
    t->flows[idx].due = due;
    return 0;
}
/* Put x at slot k of the n-entry heap h and move it down to where it belongs. */
static void sift_down(Due *h, size_t n, size_t k, Due x) {
    for (;;) {
        size_t c = 2 * k + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].due < h[c].due) c++;
        if (h[c].due >= x.due) break;
        h[k] = h[c];
        k = c;
    }
    h[k] = x;
}
static Due heap_pop(Table *t) {
    Due top = t->heap[0], last = t->heap[--t->heap_n];
    if (t->heap_n) sift_down(t->heap, t->heap_n, 0, last);
    return top;
}
/* After a packet changed flow i: its deadline may have come closer (a close completed).
   A later deadline needs nothing now: the entry pops early and is pushed again. */
static inline int heap_note(Table *t, uint32_t i) {
    int64_t d = deadline(t, &t->flows[i]);
    return d < t->flows[i].due ? heap_push(t, d, i) : 0;
}

/* --- LRU lists ------------------------------------------------------------------- */
static inline void lru_unlink(Table *t, uint32_t i) {
    Flow *f = &t->flows[i];
    if (f->prev != NIL) t->flows[f->prev].next = f->next;
    else t->head[f->cls] = f->next;
    if (f->next != NIL) t->flows[f->next].prev = f->prev;
    else t->tail[f->cls] = f->prev;
}
static inline void lru_append(Table *t, uint32_t i) {
    Flow *f = &t->flows[i];
    f->next = NIL;
    f->prev = t->tail[f->cls];
    if (f->prev != NIL) t->flows[f->prev].next = i;
    else t->head[f->cls] = i;
    t->tail[f->cls] = i;
}
static inline void touch(Table *t, uint32_t i) {
    Flow *f = &t->flows[i];
    int cls = flow_class(f);
    if (cls == f->cls && t->tail[cls] == i) return;
    lru_unlink(t, i);
    f->cls = (uint8_t)cls;
    lru_append(t, i);
}

/* --- hash table ------------------------------------------------------------------ */
#define SLOT_TAG(h) ((h) & 0xFFFFFFFF00000000ULL)
#define SLOT_INDEX(v) ((uint32_t)((v) & 0xFFFFFFFFULL) - 1u)
/* The hash's high half in the slot spares a visit to a flow that does not match. */
static uint32_t ht_find(const Table *t, const Key *k, uint64_t h) {
    uint64_t m = t->slot_mask, tag = SLOT_TAG(h);
    for (uint64_t s = h & m;; s = (s + 1) & m) {
        uint64_t v = t->slots[s];
        if (v == 0) return NIL;
        if (SLOT_TAG(v) != tag) continue;
        const Flow *f = &t->flows[SLOT_INDEX(v)];
        if (f->hash == h && key_eq(&f->key, k)) return SLOT_INDEX(v);
    }
}
static void ht_insert(Table *t, uint32_t i) {
    uint64_t m = t->slot_mask, h = t->flows[i].hash;
    uint64_t s = h & m;
    while (t->slots[s]) s = (s + 1) & m;
    t->slots[s] = SLOT_TAG(h) | ((uint64_t)i + 1);
}
static void ht_delete(Table *t, uint32_t i) {
    uint64_t m = t->slot_mask;
    uint64_t s = t->flows[i].hash & m;
    while (SLOT_INDEX(t->slots[s]) != i) s = (s + 1) & m;
    /* backward-shift deletion */
    uint64_t hole = s;
    for (uint64_t j = (s + 1) & m;; j = (j + 1) & m) {
        uint64_t v = t->slots[j];
        if (v == 0) break;
        uint64_t home = t->flows[SLOT_INDEX(v)].hash & m;
        /* move v into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            t->slots[hole] = v;
            hole = j;
        }
    }
    t->slots[hole] = 0;
}

/* Room for one more flow (slab and hash table grow by doubling, up to max_flows + 1). */
static int reserve(Table *t) {
    if (t->free_head != NIL || t->n_used < t->n_alloc) return 0;
    uint64_t limit = t->max_flows + 1;
    uint64_t n = t->n_alloc ? (uint64_t)t->n_alloc * 2 : 1024;
    if (n > limit) n = limit;
    if (n <= t->n_alloc || n >= NIL) {
        PyErr_SetString(PyExc_MemoryError, "flow table is full");
        return -1;
    }
    Flow *nf = PyMem_Realloc(t->flows, (size_t)n * sizeof(Flow));
    if (nf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->flows = nf;
    t->n_alloc = (uint32_t)n;
    uint64_t want = 16;
    while (want < n * 2) want <<= 1;
    if (want - 1 > t->slot_mask) {
        uint64_t *ns = PyMem_Calloc((size_t)want, sizeof(uint64_t));
        if (ns == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        PyMem_Free(t->slots);
        t->slots = ns;
        t->slot_mask = want - 1;
        /* every live flow is on an LRU list: rehash from there */
        for (int c = 0; c < N_CLS; c++)
            for (uint32_t i = t->head[c]; i != NIL; i = t->flows[i].next) ht_insert(t, i);
    }
    return 0;
}
static inline uint32_t slab_take(Table *t) {
    uint32_t i;
    if (t->free_head != NIL) {
        i = t->free_head;
        t->free_head = t->flows[i].next;
    } else {
        i = t->n_used++;
        t->flows[i].gen = 0;
    }
    t->flows[i].due = INT64_MAX;
    return i;
}

/* --- records --------------------------------------------------------------------- */
static PyObject *counts_tuple(const Endpoint *e) {
    PyObject *tup = PyTuple_New(N_COUNTS);
    if (tup == NULL) return NULL;
    for (int k = 0; k < N_COUNTS; k++) {
        PyObject *v = PyLong_FromLongLong(e->counts[k]);
        if (v == NULL) {
            Py_DECREF(tup);
            return NULL;
        }
        PyTuple_SET_ITEM(tup, k, v);
    }
    return tup;
}

/* Zeek's RSTOS0 history test, ^\^?S[^HAFGIQ]*R.* (flows.conn_state) */
static int rstos0_history(const Flow *f) {
    int i = 0;
    if (i < f->hist_len && f->hist[i] == '^') i++;
    if (i >= f->hist_len || f->hist[i] != 'S') return 0;
    for (i++; i < f->hist_len; i++) {
        char c = f->hist[i];
        if (c == 'R') return 1;
        if (c == 'H' || c == 'A' || c == 'F' || c == 'G' || c == 'I' || c == 'Q') return 0;
    }
    return 0;
}

static PyObject *raw_flow(const Table *t, const Flow *f, int reason) {
    int tcp = f->key.proto == P_TCP;
    PyObject *tup = PyTuple_New(N_RAW);
    if (tup == NULL) return NULL;
    PyObject *v[N_RAW];
    v[0] = PyLong_FromLong(f->key.proto);
    v[1] = PyLong_FromUnsignedLongLong(f->o_hi);
    v[2] = PyLong_FromUnsignedLongLong(f->o_lo);
    v[3] = PyLong_FromLongLong(f->o_p);
    v[4] = PyLong_FromUnsignedLongLong(f->r_hi);
    v[5] = PyLong_FromUnsignedLongLong(f->r_lo);
    v[6] = PyLong_FromLongLong(f->r_p);
    /* absent ids are None, as in flows.raw_flow */
    v[7] = f->icmp_id >= 0 ? PyLong_FromLongLong(f->icmp_id) : Py_NewRef(Py_None);
    v[8] = f->vlan >= 0 ? PyLong_FromLongLong(f->vlan) : Py_NewRef(Py_None);
    v[9] = f->vlan_inner >= 0 ? PyLong_FromLongLong(f->vlan_inner) : Py_NewRef(Py_None);
    v[10] = PyLong_FromLongLong(f->start_ns);
    v[11] = PyLong_FromLongLong(f->end_ns);
    v[12] = PyLong_FromLongLong(f->seen_ns);
    v[13] = PyLong_FromLongLong(f->pkts[0]);
    v[14] = PyLong_FromLongLong(f->pkts[1]);
    v[15] = PyLong_FromLongLong(f->ip_bytes[0]);
    v[16] = PyLong_FromLongLong(f->ip_bytes[1]);
    v[17] = PyLong_FromLongLong(f->payload[0]);
    v[18] = PyLong_FromLongLong(f->payload[1]);
    v[19] = PyLong_FromLongLong(tcp ? ep_size(&f->ep[0]) : 0);
    v[20] = PyLong_FromLongLong(tcp ? ep_size(&f->ep[1]) : 0);
    v[21] = PyLong_FromLong(tcp ? f->ep[0].state : 0);
    v[22] = PyLong_FromLong(tcp ? f->ep[1].state : 0);
    v[23] = PyUnicode_DecodeASCII(f->hist, f->hist_len, NULL);
    v[24] = PyBool_FromLong(f->flipped);
    v[25] = PyLong_FromLongLong(f->first_file);
    v[26] = PyLong_FromLongLong(f->first_frame);
    v[27] = PyLong_FromLongLong(f->last_file);
    v[28] = PyLong_FromLongLong(f->last_frame);
    v[29] = PyLong_FromLongLong(f->reassembled);
    /* the TCP analysis counters; None when all are zero (most flows) or not TCP */
    for (int d = 0; d < 2; d++) {
        int any = 0;
        if (tcp)
            for (int k = 0; k < N_COUNTS; k++) any |= f->ep[d].counts[k] != 0;
        v[30 + d] = any ? counts_tuple(&f->ep[d]) : Py_NewRef(Py_None);
    }
    v[32] = PyBool_FromLong(f->active[0]);
    v[33] = PyBool_FromLong(f->active[1]);
    v[34] = Py_NewRef(t->reasons[reason]);
    v[35] = Py_NewRef(t->cid_seed); /* the Community ID seed */
    {
        /* flows.summary_key: what conn_state depends on, packed (FlowSummary counts by it) */
        long long o_sz = tcp ? ep_size(&f->ep[0]) : 0, r_sz = tcp ? ep_size(&f->ep[1]) : 0;
        unsigned long long key = (unsigned long long)f->key.proto;
        key |= (unsigned long long)(tcp ? f->ep[0].state : 0) << 8;
        key |= (unsigned long long)(tcp ? f->ep[1].state : 0) << 11;
        key |= (unsigned long long)(o_sz == 0 && r_sz == 0) << 14;
        key |= (unsigned long long)rstos0_history(f) << 15;
        key |= (unsigned long long)(f->active[0] != 0) << 16;
        key |= (unsigned long long)(f->active[1] != 0) << 17;
        key |= (unsigned long long)reason << 18;
        v[36] = PyLong_FromUnsignedLongLong(key);
    }
    int bad = 0;
    for (int k = 0; k < N_RAW; k++) {
        if (v[k] == NULL) bad = 1;
        PyTuple_SET_ITEM(tup, k, v[k] ? v[k] : Py_NewRef(Py_None));
    }
    if (bad) {
        Py_DECREF(tup);
        return NULL;
    }
    return tup;
}

/* Take flow i out of the table and append its record; -1 on a Python error. */
static int finish_flow(Table *t, uint32_t i, int reason) {
    Flow *f = &t->flows[i];
    t->expired[reason] += 1;
    PyObject *rec = raw_flow(t, f, reason);
    int rc = rec == NULL ? -1 : PyList_Append(t->finished, rec);
    Py_XDECREF(rec);
    ht_delete(t, i);
    lru_unlink(t, i);
    f->gen += 1;
    f->due = INT64_MAX;
    f->next = t->free_head;
    t->free_head = i;
    t->live -= 1;
    return rc;
}

static int evict_one(Table *t, uint32_t keep) {
    uint32_t best = NIL;
    for (int c = 0; c < N_CLS; c++) {
        uint32_t i = t->head[c];
        if (i == keep) i = t->flows[i].next;
        if (i == NIL) continue;
        if (best == NIL || t->flows[i].seen_ns < t->flows[best].seen_ns) best = i;
    }
    if (best == NIL) return 0;
    return finish_flow(t, best, X_EVICTED);
}

static int sweep(Table *t) {
    for (int c = 0; c < N_CLS; c++) {
        while (t->head[c] != NIL) {
            uint32_t i = t->head[c];
            Flow *f = &t->flows[i];
            int reason = expired_before(t, f, t->now, f->key.proto, 0, 0);
            if (reason < 0) break;
            if (finish_flow(t, i, reason) < 0) return -1;
        }
    }
    return 0;
}

/* Every flow expired at t->now ends, wherever it stands in its LRU list: with timestamps
   out of order (or per-protocol timeouts within one list) a list is not sorted by
   deadline, and where sweep() stops would depend on which other flows share the table.
   The deadline heap finds them without visiting the flows not yet due. */
static int sweep_due(Table *t) {
    while (t->heap_n && t->heap[0].due <= t->now) {
        Due e = heap_pop(t);
        Flow *f = &t->flows[e.idx];
        if (f->gen != e.gen || f->due != e.due) continue; /* the flow ended, or has a newer entry */
        f->due = INT64_MAX;
        int reason = expired_before(t, f, t->now, f->key.proto, 0, 0);
        if (reason >= 0) {
            if (finish_flow(t, e.idx, reason) < 0) return -1;
        } else if (heap_push(t, deadline(t, f), e.idx) < 0) {
            return -1;
        }
    }
    /* stale entries (flows that ended on a packet, deadlines that came closer) are dropped
       when the heap has grown well past the live flows */
    if (t->heap_n > 4 * (size_t)t->live + 4096) {
        size_t n = 0;
        for (size_t k = 0; k < t->heap_n; k++) {
            Due e = t->heap[k];
            const Flow *f = &t->flows[e.idx];
            if (f->gen == e.gen && f->due == e.due) t->heap[n++] = e;
        }
        t->heap_n = n;
        for (size_t k = n / 2; k-- > 0;) sift_down(t->heap, n, k, t->heap[k]); /* heapify */
    }
    return 0;
}

/* --- TCP ------------------------------------------------------------------------- */
/* Wireshark 4.0's tcp_analyze_sequence_number; counts go to fwd->counts.  As in
   Wireshark, a next expected sequence number, an ACK number or a "max seq to be acked"
   of 0 means "not seen yet"; ack is the header's field whether or not ACK is set; time
   differences are unsigned. */
static void wireshark(Endpoint *fwd, Endpoint *rev, int64_t ts, int flags, uint32_t seq,
                      uint32_t ack, uint32_t win, int64_t seglen, int64_t ooo_ns) {
    int64_t *c = fwd->counts;
    int syn = flags & F_SYN, fin = flags & F_FIN, rst = flags & F_RST, has_ack = flags & F_ACK;
    int ctl = syn || fin || rst;
    uint32_t nxt0 = fwd->ws_next; /* 0: nothing seen in this direction yet */
    int probe = 0, keep_alive = 0, answer = 0;
    if (seglen == 1 && seq == nxt0 && rev->ws_window_valid && rev->ws_window == 0) {
        c[ZERO_WINDOW_PROBE] += 1;
        probe = 1;
    } else {
        if (win == 0 && !ctl) c[ZERO_WINDOW] += 1;
        if (nxt0 && sdelta(seq, nxt0) > 0 && !rst) c[LOST_SEGMENT] += 1;
        if (seglen <= 1 && !ctl && seq == (uint32_t)(nxt0 - 1u)) {
            c[KEEP_ALIVE] += 1;
            keep_alive = 1;
        }
        /* the ACK of a keep-alive or a zero-window probe: no further checks */
        int repeat = seglen == 0 && !ctl && fwd->ws_window_valid && win == fwd->ws_window &&
                     seq == nxt0;
        if (repeat && win != 0 && ack == fwd->ws_lastack && rev->ws_last_keep_alive) {
            answer = 1;
        } else if (repeat && win == 0 && rev->ws_last_probe &&
                   (ack == fwd->ws_lastack || ack == (uint32_t)(fwd->ws_lastack + 1u))) {
            answer = 1;
        } else if (repeat && win != 0 && ack == fwd->ws_lastack) {
            fwd->ws_dupacks += 1;
            c[DUP_ACK] += 1;
        }
    }
    if (ack != fwd->ws_lastack) fwd->ws_dupacks = 0;
    /* ACKed unseen keeps netsift's rule (once per ACK beyond everything seen or
       acknowledged): the content-gap history letter is derived from it. */
    if (has_ack && rev->ws_next && sdelta(ack, rev->ws_maxack) > 0 && !answer) {
        c[ACKED_UNSEEN] += 1;
        rev->ws_maxack = ack;
    }
    if ((seglen > 0 || syn || fin) && !keep_alive && !answer) {
        int behind = nxt0 != 0 && sdelta(seq, nxt0) < 0;
        if (seglen > 1 && seq == (uint32_t)(nxt0 - 1u)) behind = 0; /* data after a probe */
        if (behind && rev->ws_dupacks >= 2 && rev->ws_lastack == seq &&
            ts - rev->ws_lastack_ns >= 0 && ts - rev->ws_lastack_ns < FAST_RETRANS_NS) {
            c[FAST_RETRANS] += 1;
        } else if (behind && ts - fwd->ws_next_ns >= 0 && ts - fwd->ws_next_ns < ooo_ns &&
                   nxt0 != (uint32_t)(seq + (uint32_t)seglen + ((syn || fin) ? 1u : 0u))) {
            c[OUT_OF_ORDER] += 1;
        } else if (seglen > 0 && rev->ws_lastack &&
                   sdelta((uint32_t)(seq + (uint32_t)seglen), rev->ws_lastack) <= 0) {
            c[SPURIOUS] += 1;
        } else if (behind) {
            c[RETRANS] += 1;
        }
    }
    /* advance (a zero-window probe does not move the next expected number) */
    uint32_t nxt = seq + (uint32_t)seglen + ((syn || fin) ? 1u : 0u);
    if (!probe && (!nxt0 || sdelta(nxt, nxt0) > 0)) {
        fwd->ws_next = nxt;
        fwd->ws_next_ns = ts;
        if (sdelta(nxt, fwd->ws_maxack) > 0 || !fwd->ws_maxack) fwd->ws_maxack = nxt;
    }
    fwd->ws_window = win;
    fwd->ws_window_valid = 1;
    fwd->ws_lastack = ack;
    fwd->ws_lastack_ns = ts;
    fwd->ws_last_keep_alive = (uint8_t)keep_alive;
    fwd->ws_last_probe = (uint8_t)probe;
    /* probes included: the content-gap letter needs bytes never seen */
    if (!fwd->seen_end || sdelta(nxt, fwd->seen_end) > 0) fwd->seen_end = nxt;
}

static inline void set_last(Endpoint *ep, uint32_t last_seq) {
    if (last_seq < ep->last && sdelta(last_seq, ep->last) > 0) ep->last_wraps += 1;
    ep->last = last_seq;
}

static int state_machine(Flow *f, Endpoint *ep, Endpoint *peer, int is_orig, int flags,
                         int64_t plen, int64_t ts) {
    int syn = flags & F_SYN, fin = flags & F_FIN, rst = flags & F_RST, has_ack = flags & F_ACK;
    int do_close = 0;
    int st = ep->state;
    if (st == INACTIVE) {
        if (syn) {
            if (is_orig) {
                set_state(ep, has_ack ? SYN_ACK_SENT : SYN_SENT);
                if (f->attempt_ns < 0) f->attempt_ns = ts;
            } else {
                if (peer->state == SYN_SENT) set_state(peer, ESTABLISHED);
                set_state(ep, ESTABLISHED);
            }
        }
        if (fin) {
            set_state(ep, CLOSED);
            do_close = 1;
        }
        if (rst) {
            set_state(ep, RESET);
            do_close = 1;
        }
        if (ep->state == INACTIVE) {
            if (!is_orig && plen == 0 && f->ep[0].state == SYN_SENT) {
                /* an ACK of the SYN before the SYN-ACK: not a partial connection */
            } else if (has_ack && peer->state == ESTABLISHED) {
                set_state(ep, ESTABLISHED);
            } else {
                set_state(ep, PARTIAL);
            }
        }
    } else if (st == SYN_SENT || st == SYN_ACK_SENT) {
        if (fin) {
            set_state(ep, CLOSED);
            do_close = 1;
        }
        if (rst) {
            set_state(ep, RESET);
            do_close = 1;
        }
    } else if (st == ESTABLISHED || st == PARTIAL) {
        if (syn && st == PARTIAL && peer->state == INACTIVE && !has_ack) set_state(ep, SYN_SENT);
        if (fin && !rst) {
            set_state(ep, CLOSED);
            if (peer->state == RESET && peer->prev_state == CLOSED) set_state(peer, CLOSED);
            do_close = 1;
        }
        if (rst) {
            set_state(ep, RESET);
            do_close = 1;
        }
    } else if (st == CLOSED && rst && peer->state != CLOSED) {
        set_state(ep, RESET);
        if (!ep->did_close) do_close = 1;
    }
    return do_close;
}

static void tcp_packet(Flow *f, int is_orig, int64_t ts, int flags, uint32_t seq, uint32_t ack,
                       uint32_t win, int64_t plen) {
    Endpoint *ep = &f->ep[is_orig ? 0 : 1];
    Endpoint *peer = &f->ep[is_orig ? 1 : 0];
    int syn = flags & F_SYN, fin = flags & F_FIN, rst = flags & F_RST, has_ack = flags & F_ACK;
    int64_t unseen = ep->counts[ACKED_UNSEEN];
    /* Wireshark's initial RTT, latest SYN to the first ACK after it: the out-of-order threshold */
    if (syn && !has_ack) {
        f->syn_ns = ts;
    } else if (has_ack && !syn && f->syn_ns >= 0 && f->irtt_ns == 0) {
        f->irtt_ns = ts - f->syn_ns;
    }
    wireshark(ep, peer, ts, flags, seq, ack, win, plen, f->irtt_ns ? f->irtt_ns : OOO_NS);
    if (ep->counts[ACKED_UNSEEN] != unseen && !(fin || rst) && peer->seen_end &&
        sdelta(ack, peer->seen_end) > 0 && scaled(&peer->gap, &peer->gap_thr))
        add_history(f, is_orig ? 'g' : 'G');

    int64_t seg_len = plen + (syn ? 1 : 0) + (fin ? 1 : 0);
    if (rst) seg_len -= plen;
    uint32_t last_seq = seq + (uint32_t)seg_len;
    /* init_endpoint */
    int st = ep->state;
    if (st == INACTIVE) {
        if (syn) init_seqs(ep, seq, last_seq);
        else init_seqs(ep, seq - 1u, seq);
    } else if (st == SYN_SENT || st == SYN_ACK_SENT) {
        if (syn && seq != ep->start) init_seqs(ep, seq, last_seq);
    } else if (st == ESTABLISHED || st == PARTIAL) {
        if (syn) init_seqs(ep, seq, last_seq);
    } else if (st == RESET && syn && ep->prev_state == INACTIVE) {
        init_seqs(ep, seq, last_seq);
    }

    /* history */
    int bits = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
    if (bits > 1) {
        check_history(f, is_orig, fin && rst ? 'I' : 'Q');
    } else if (bits == 1) {
        if (syn) {
            char code = has_ack ? 'H' : 'S';
            if (check_history(f, is_orig, code) && (int64_t)seq != ep->hist_last_syn)
                add_history(f, is_orig ? code : lower(code));
            ep->hist_last_syn = seq;
        }
        if (fin) {
            uint32_t fseq = seq + (uint32_t)plen;
            if (check_history(f, is_orig, 'F') && (int64_t)fseq != ep->hist_last_fin)
                add_history(f, is_orig ? 'F' : 'f');
            ep->hist_last_fin = fseq;
        }
        if (rst) {
            if (check_history(f, is_orig, 'R') && (int64_t)seq != ep->hist_last_rst)
                add_history(f, is_orig ? 'R' : 'r');
            ep->hist_last_rst = seq;
        }
    } else if (plen) {
        check_history(f, is_orig, 'D');
    } else if (has_ack) {
        check_history(f, is_orig, 'A');
    }

    /* zero window (Zeek update_window) */
    if (win == 0 && !rst && peer->state != CLOSED && ep->state != RESET &&
        scaled(&ep->zw, &ep->zw_thr))
        add_history(f, is_orig ? 'W' : 'w');

    if (!(ep->did_close && peer->did_close) && ts > f->end_ns) f->end_ns = ts;
    if (fin) ep->fin_cnt += 1;

    /* ACK processing */
    if (has_ack) {
        if (peer->state == INACTIVE) {
            uint32_t p = ack - 1u;
            init_seqs(peer, p, p);
        } else if (!rst) {
            int32_t delta = sdelta(ack, peer->ack);
            if (ack == 0 && delta > TOO_LARGE_SEQ_DELTA) {
                /* a zero ACK far ahead: ignored */
            } else if (delta > 0) {
                if (ack < peer->ack) peer->ack_wraps += 1;
                peer->ack = ack;
            }
        }
    }
    /* update_last_seq */
    int32_t delta_last = sdelta(last_seq, ep->last);
    if ((syn || rst) && (delta_last > TOO_LARGE_SEQ_DELTA || delta_last < -TOO_LARGE_SEQ_DELTA)) {
        /* ignored */
    } else if (fin && ep->last == (uint32_t)(ep->start + 1u)) {
        set_last(ep, last_seq);
    } else if (ep->state == RESET) {
        /* nothing */
    } else if (delta_last > 0) {
        set_last(ep, last_seq);
    } else if (plen > 0 && scaled(&ep->rxmit, &ep->rxmit_thr)) {
        add_history(f, is_orig ? 'T' : 't');
    }

    int do_close = state_machine(f, ep, peer, is_orig, flags, plen, ts);
    if (do_close && !ep->did_close) ep->did_close = 1;
}

/* --- per packet ------------------------------------------------------------------ */
typedef struct {
    int proto;
    uint64_t s_hi, s_lo, d_hi, d_lo;
    int64_t sp, dp, icmp_id, vlan, vlan_inner, ts, ffile, fframe, ip_len, plen;
    int flags;
    uint32_t seq, ack, win;
    int reassembled;
} Pkt;

static int new_flow(Table *t, const Key *key, uint64_t h, const Pkt *p, uint32_t *out) {
    if (reserve(t) < 0) return -1;
    uint32_t i = slab_take(t);
    Flow *f = &t->flows[i];
    memset(f, 0, offsetof(Flow, ep));
    f->key = *key;
    f->hash = h;
    f->attempt_ns = -1;
    f->syn_ns = -1;
    f->irtt_ns = 0;
    int proto = p->proto;
    int flip = 0;
    if (proto == P_TCP) {
        /* Zeek TCPAnalyzer::WantConnection: a first packet without SYN, or a SYN-ACK, is
           flipped by the ports; when both are likely server ports, only a non-SYN packet
           from the lower port is. */
        int syn = (p->flags & F_SYN) != 0;
        if (!syn || (p->flags & F_ACK))
            flip = (t->server_ports[p->sp] && !t->server_ports[p->dp]) ||
                   (!syn && p->sp < p->dp && t->server_ports[p->sp] && t->server_ports[p->dp]);
    } else if (proto == P_UDP) {
        flip = t->server_ports[p->sp] && !t->server_ports[p->dp];
    } else if (proto == P_ICMP || proto == P_ICMP6) {
        flip = icmp_reply_of(proto, (int)p->sp) >= 0;
    }
    if (flip) {
        f->o_hi = p->d_hi, f->o_lo = p->d_lo, f->o_p = p->dp;
        f->r_hi = p->s_hi, f->r_lo = p->s_lo, f->r_p = p->sp;
        f->flipped = 1;
        f->hist[f->hist_len++] = '^';
    } else {
        f->o_hi = p->s_hi, f->o_lo = p->s_lo, f->o_p = p->sp;
        f->r_hi = p->d_hi, f->r_lo = p->d_lo, f->r_p = p->dp;
    }
    f->icmp_id = (proto == P_ICMP || proto == P_ICMP6) && icmp_has_id(proto, (int)p->sp)
                     ? p->icmp_id
                     : -1;
    f->vlan = p->vlan;
    f->vlan_inner = p->vlan_inner;
    f->start_ns = f->end_ns = f->seen_ns = p->ts;
    f->first_file = f->last_file = p->ffile;
    f->first_frame = f->last_frame = p->fframe;
    if (proto == P_TCP) {
        ep_init(&f->ep[0]);
        ep_init(&f->ep[1]);
    }
    ht_insert(t, i);
    t->live += 1;
    f->cls = (uint8_t)flow_class(f);
    lru_append(t, i);
    t->flows_created += 1;
    *out = i;
    if (t->live > t->max_flows && evict_one(t, i) < 0) return -1;
    if ((long long)t->live > t->peak_flows) t->peak_flows = (long long)t->live;
    return 0;
}

/* The flow a packet joined, as Python sees it: (flow id << 1) | direction (1 = responder),
   the flow id being (first file << 40) | first frame; and the payload bytes that direction
   had carried before the packet. */
static int packet(Table *t, const Pkt *p, int64_t *fid, int64_t *seen) {
    if (p->ts > t->now) t->now = p->ts;
    Key key;
    int a_le_b = p->s_hi < p->d_hi ||
                 (p->s_hi == p->d_hi &&
                  (p->s_lo < p->d_lo || (p->s_lo == p->d_lo && p->sp <= p->dp)));
    key.proto = p->proto;
    if (a_le_b) {
        key.hi1 = p->s_hi, key.lo1 = p->s_lo, key.p1 = (int32_t)p->sp;
        key.hi2 = p->d_hi, key.lo2 = p->d_lo, key.p2 = (int32_t)p->dp;
    } else {
        key.hi1 = p->d_hi, key.lo1 = p->d_lo, key.p1 = (int32_t)p->dp;
        key.hi2 = p->s_hi, key.lo2 = p->s_lo, key.p2 = (int32_t)p->sp;
    }
    key.icmp_id = (int32_t)p->icmp_id;
    key.vlan = t->vlan_in_key ? (int32_t)p->vlan : -1;
    uint64_t h = key_hash(t, &key);
    uint32_t i = ht_find(t, &key, h);
    if (i != NIL) {
        int reason = expired_before(t, &t->flows[i], p->ts, p->proto, p->flags, p->seq);
        if (reason >= 0) {
            if (finish_flow(t, i, reason) < 0) return -1;
            i = NIL;
        }
    }
    if (i == NIL && new_flow(t, &key, h, p, &i) < 0) return -1;
    Flow *f = &t->flows[i];
    int is_orig = p->s_hi == f->o_hi && p->s_lo == f->o_lo && p->sp == f->o_p;
    int d = is_orig ? 0 : 1;
    *fid = (((f->first_file << 40) | f->first_frame) << 1) | d;
    *seen = f->payload[d];
    f->pkts[d] += 1;
    f->ip_bytes[d] += p->ip_len;
    f->payload[d] += p->plen;
    f->reassembled += p->reassembled;
    if (p->ts > f->seen_ns) f->seen_ns = p->ts;
    f->last_file = p->ffile;
    f->last_frame = p->fframe;
    if (p->proto == P_TCP) {
        tcp_packet(f, is_orig, p->ts, p->flags, p->seq, p->ack, p->win, p->plen);
    } else {
        f->active[d] = 1;
        if (p->proto == P_UDP) check_history(f, is_orig, 'D');
        if (p->ts > f->end_ns) f->end_ns = p->ts;
    }
    touch(t, i);
    return heap_note(t, i);
}

/* --- Python type ----------------------------------------------------------------- */
static PyObject *Table_update(Table *t, PyObject *args) {
    PyObject *cols, *buf_obj, *off_obj, *cap_obj, *frames_obj;
    PyObject *fid_obj = Py_None, *seen_obj = Py_None;
    long long file_index;
    Py_ssize_t start = 0, stop = -1;
    if (!PyArg_ParseTuple(args, "O!OOOLO|nnOO", &PyTuple_Type, &cols, &buf_obj, &off_obj,
                          &cap_obj, &file_index, &frames_obj, &start, &stop, &fid_obj, &seen_obj))
        return NULL;
    if (PyTuple_GET_SIZE(cols) != N_COLS) {
        PyErr_Format(PyExc_TypeError, "expected %d column arrays", (int)N_COLS);
        return NULL;
    }
    Py_buffer cv[N_COLS], bv[3], fv, ov[2];
    int n_cv = 0, n_bv = 0, have_fv = 0, n_ov = 0;
    PyObject *result = NULL;
    for (; n_cv < N_COLS; n_cv++)
        if (get_buffer(PyTuple_GET_ITEM(cols, n_cv), &cv[n_cv], COL_ITEMSIZE[n_cv],
                     COL_NAMES[n_cv]) < 0)
            goto done;
    if (get_buffer(buf_obj, &bv[0], 1, "buf") < 0) goto done;
    n_bv = 1;
    if (get_buffer(off_obj, &bv[1], 8, "off") < 0) goto done;
    n_bv = 2;
    if (get_buffer(cap_obj, &bv[2], 8, "caplen") < 0) goto done;
    n_bv = 3;
    const int reassembled = frames_obj != Py_None;
    Py_ssize_t n_frames = 0;
    if (reassembled) {
        if (get_buffer(frames_obj, &fv, 8, "frames") < 0) goto done;
        have_fv = 1;
        n_frames = fv.len / 16;
    }
    const Py_ssize_t n = cv[C_FRAME].len / 8;
    for (int k = 0; k < N_COLS; k++) {
        if (cv[k].len / COL_ITEMSIZE[k] != n) {
            PyErr_Format(PyExc_ValueError, "column %s has the wrong length", COL_NAMES[k]);
            goto done;
        }
    }
    if (bv[1].len / 8 != n || bv[2].len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "off and caplen differ in length from the columns");
        goto done;
    }
    /* optional per-row outputs (writable int64 arrays as long as the columns) */
    int64_t scratch[2];
    int64_t *fid_out = NULL, *seen_out = NULL;
    if (fid_obj != Py_None || seen_obj != Py_None) {
        if (fid_obj == Py_None || seen_obj == Py_None) {
            PyErr_SetString(PyExc_TypeError, "give both output arrays or neither");
            goto done;
        }
        if (PyObject_GetBuffer(fid_obj, &ov[0], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        n_ov = 1;
        if (PyObject_GetBuffer(seen_obj, &ov[1], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        n_ov = 2;
        if (ov[0].len != n * 8 || ov[1].len != n * 8 || ov[0].itemsize != 8 ||
            ov[1].itemsize != 8) {
            PyErr_SetString(PyExc_ValueError, "output arrays must be int64 and as long as the columns");
            goto done;
        }
        fid_out = ov[0].buf;
        seen_out = ov[1].buf;
    }
    /* rows [start, stop) only; stop < 0 means to the end */
    if (stop < 0 || stop > n) stop = n;
    if (start < 0) start = 0;
    if (start >= stop) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    const uint8_t *ipv = cv[C_IP_VERSION].buf, *isfrag = cv[C_IS_FRAGMENT].buf;
    const int64_t *frame = cv[C_FRAME].buf, *ts = cv[C_TS_NS].buf;
    const uint64_t *shi = cv[C_SRC_HI].buf, *slo = cv[C_SRC_LO].buf;
    const uint64_t *dhi = cv[C_DST_HI].buf, *dlo = cv[C_DST_LO].buf;
    const uint8_t *proto_c = cv[C_PROTO].buf;
    const int32_t *iplen = cv[C_IP_LEN].buf, *l4off = cv[C_L4_OFF].buf;
    const uint16_t *sport = cv[C_SPORT].buf, *dport = cv[C_DPORT].buf;
    const uint16_t *flags_c = cv[C_FLAGS].buf, *win_c = cv[C_WINDOW].buf;
    const uint32_t *seq_c = cv[C_SEQ].buf, *ack_c = cv[C_ACK].buf;
    const uint8_t *itype = cv[C_ICMP_TYPE].buf, *icode = cv[C_ICMP_CODE].buf;
    const int32_t *plen_c = cv[C_PAYLOAD_LEN].buf;
    const uint8_t *vdepth = cv[C_VLAN_DEPTH].buf;
    const uint16_t *vout = cv[C_VLAN_OUTER].buf, *vin = cv[C_VLAN_INNER].buf;
    const uint8_t *b = bv[0].buf;
    const int64_t blen = (int64_t)bv[0].len;
    const int64_t *off = bv[1].buf, *caplen = bv[2].buf;
    const int64_t *frames = reassembled ? (const int64_t *)fv.buf : NULL;

    Py_ssize_t j = 0; /* index among the rows taken (frames[j]) */
    for (Py_ssize_t i = start; i < stop; i++) {
        int ip = ipv[i] == 4 || ipv[i] == 6;
        if (!ip) {
            if (!reassembled) t->skipped[S_NOT_IP] += 1;
            continue;
        }
        if (!reassembled && isfrag[i]) {
            t->skipped[S_FRAGMENT] += 1;
            continue;
        }
        Py_ssize_t row = j++;
        Pkt p;
        p.proto = proto_c[i];
        int32_t l4 = l4off[i];
        p.icmp_id = 0;
        if (p.proto == P_TCP || p.proto == P_UDP) {
            if (l4 < 0) {
                t->skipped[S_NO_L4] += 1;
                continue;
            }
            p.sp = sport[i];
            p.dp = dport[i];
        } else if (p.proto == P_ICMP || p.proto == P_ICMP6) {
            if (l4 < 0) {
                t->skipped[S_NO_L4] += 1;
                continue;
            }
            int typ = itype[i];
            p.sp = typ;
            int pair = icmp_pair(p.proto, typ);
            if (pair < 0) pair = icmp_reply_of(p.proto, typ);
            p.dp = pair < 0 ? icode[i] : pair;
            if (icmp_has_id(p.proto, typ)) {
                int64_t o = off[i], cl = caplen[i];
                /* the two identifier bytes, inside the record's captured bytes and the buffer */
                if (o >= 0 && cl >= 0 && cl <= blen && o <= blen - cl && (int64_t)l4 + 6 <= cl) {
                    const uint8_t *at = b + o + l4 + 4;
                    p.icmp_id = ((int64_t)at[0] << 8) | at[1];
                }
            }
        } else {
            p.sp = p.dp = 0;
        }
        p.vlan = vdepth[i] ? (int64_t)vout[i] : -1;
        p.vlan_inner = vdepth[i] > 1 ? (int64_t)vin[i] : -1;
        if (reassembled) {
            if (row >= n_frames) {
                PyErr_SetString(PyExc_IndexError, "fewer frames than reassembled datagrams");
                goto done;
            }
            p.ffile = frames[2 * row];
            p.fframe = frames[2 * row + 1];
        } else {
            p.ffile = file_index;
            p.fframe = frame[i];
        }
        p.s_hi = shi[i];
        p.s_lo = slo[i];
        p.d_hi = dhi[i];
        p.d_lo = dlo[i];
        p.ts = ts[i];
        p.ip_len = iplen[i];
        p.plen = plen_c[i];
        p.flags = flags_c[i];
        p.seq = seq_c[i];
        p.ack = ack_c[i];
        p.win = win_c[i];
        p.reassembled = reassembled;
        if (packet(t, &p, fid_out ? &fid_out[i] : &scratch[0],
                   seen_out ? &seen_out[i] : &scratch[1]) < 0)
            goto done;
    }
    if (!reassembled && t->auto_sweep && sweep(t) < 0) goto done;
    result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < n_ov; k++) PyBuffer_Release(&ov[k]);
    if (have_fv) PyBuffer_Release(&fv);
    for (int k = 0; k < n_bv; k++) PyBuffer_Release(&bv[k]);
    for (int k = 0; k < n_cv; k++) PyBuffer_Release(&cv[k]);
    return result;
}

static PyObject *Table_finish(Table *t, PyObject *args) {
    Py_ssize_t limit = -1; /* end at most this many flows per call (-1: all) */
    if (!PyArg_ParseTuple(args, "|n", &limit)) return NULL;
    Py_ssize_t done = 0;
    for (int c = 0; c < N_CLS; c++) {
        while (t->head[c] != NIL && (limit < 0 || done < limit)) {
            uint32_t i = t->head[c];
            if (finish_flow(t, i, close_complete(&t->flows[i]) ? X_CLOSED : X_END) < 0)
                return NULL;
            done++;
        }
    }
    return PyLong_FromUnsignedLongLong(t->live);
}

static PyObject *Table_advance(Table *t, PyObject *args) {
    long long ts;
    if (!PyArg_ParseTuple(args, "L", &ts)) return NULL;
    if (ts > t->now) t->now = ts;
    if (sweep_due(t) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Table_set_auto_sweep(Table *t, PyObject *args) {
    int flag;
    if (!PyArg_ParseTuple(args, "p", &flag)) return NULL;
    t->auto_sweep = flag;
    Py_RETURN_NONE;
}

static PyObject *Table_drain(Table *t, PyObject *Py_UNUSED(ignored)) {
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) return NULL;
    PyObject *out = t->finished;
    t->finished = fresh;
    return out;
}

static PyObject *Table_counters(Table *t, PyObject *Py_UNUSED(ignored)) {
    PyObject *sk = Py_BuildValue("(LLL)", t->skipped[0], t->skipped[1], t->skipped[2]);
    PyObject *ex = Py_BuildValue("(LLLLLLL)", t->expired[0], t->expired[1], t->expired[2],
                                 t->expired[3], t->expired[4], t->expired[5], t->expired[6]);
    PyObject *r = NULL;
    if (sk && ex)
        r = Py_BuildValue("(OOLLK)", sk, ex, t->flows_created, t->peak_flows,
                          (unsigned long long)t->live);
    Py_XDECREF(sk);
    Py_XDECREF(ex);
    return r;
}

static PyObject *Table_get_live(Table *t, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(t->live);
}

static int Table_init(Table *t, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"max_flows", "vlan_in_key", "server_ports", "timeouts", "seed", "cid_seed", NULL};
    int cid_seed = 0;
    long long max_flows;
    int vlan_in_key;
    Py_buffer ports;
    PyObject *timeouts;
    unsigned long long seed;
    if (t->flows != NULL || t->finished != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Table is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Lpy*O!K|i", kwlist, &max_flows, &vlan_in_key,
                                     &ports, &PyTuple_Type, &timeouts, &seed, &cid_seed))
        return -1;
    int ok = 0;
    if (ports.len != 65536) {
        PyErr_SetString(PyExc_ValueError, "server_ports must be a 65536-byte bitmap");
    } else if (max_flows < 1 || max_flows >= (long long)NIL - 1) {
        PyErr_SetString(PyExc_ValueError, "max_flows out of range");
    } else if (!PyArg_ParseTuple(timeouts, "LLLLLLL", &t->tcp_ns, &t->udp_ns, &t->icmp_ns,
                                 &t->other_ns, &t->attempt_ns, &t->close_ns, &t->active_ns)) {
    } else {
        ok = 1;
    }
    if (ok) memcpy(t->server_ports, ports.buf, 65536);
    PyBuffer_Release(&ports);
    if (!ok) return -1;
    t->max_flows = (uint64_t)max_flows;
    t->vlan_in_key = vlan_in_key;
    t->auto_sweep = 1;
    Py_XSETREF(t->cid_seed, PyLong_FromLong(cid_seed));
    if (t->cid_seed == NULL) return -1;
    t->seed = fmix64(seed ^ 0x243F6A8885A308D3ULL);
    t->free_head = NIL;
    for (int c = 0; c < N_CLS; c++) t->head[c] = t->tail[c] = NIL;
    t->now = -((int64_t)1 << 62);
    t->finished = PyList_New(0);
    if (t->finished == NULL) return -1;
    for (int k = 0; k < N_EXPIRATIONS; k++) {
        t->reasons[k] = PyUnicode_InternFromString(EXPIRATION_NAMES[k]);
        if (t->reasons[k] == NULL) return -1;
    }
    if (reserve(t) < 0) return -1;
    return 0;
}

static void Table_dealloc(Table *t) {
    PyMem_Free(t->flows);
    PyMem_Free(t->slots);
    PyMem_Free(t->heap);
    Py_XDECREF(t->finished);
    for (int k = 0; k < N_EXPIRATIONS; k++) Py_XDECREF(t->reasons[k]);
    Py_XDECREF(t->cid_seed);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef Table_methods[] = {
    {"update", (PyCFunction)Table_update, METH_VARARGS,
     "update(columns, buf, off, caplen, file_index, frames[, start, stop]): feed decoded rows "
     "(rows start..stop-1 only when given)."},
    {"finish", (PyCFunction)Table_finish, METH_VARARGS,
     "finish([limit]): end of capture: live flows end (at most limit of them); returns how many "
     "are still live."},
    {"advance", (PyCFunction)Table_advance, METH_VARARGS,
     "advance(ts): the clock reaches ts (if later) and every flow expired by then ends."},
    {"set_auto_sweep", (PyCFunction)Table_set_auto_sweep, METH_VARARGS,
     "set_auto_sweep(flag): whether update() ends flows idle past their timeouts (default true)."},
    {"drain", (PyCFunction)Table_drain, METH_NOARGS,
     "The raw tuples of the flows finished since the last call, in the order they ended."},
    {"counters", (PyCFunction)Table_counters, METH_NOARGS,
     "(skipped, expired, flows_created, peak_flows, live)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Table_getset[] = {
    {"live", (getter)Table_get_live, NULL, "live flows", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netsift._flows.Table",
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The flow table of netsift.flows.FlowTable, in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Table_init,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
    .tp_getset = Table_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_flows", "Bidirectional flow table (netsift.flows), in C.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__flows(void) {
    if (PyType_Ready(&TableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0 ||
        PyModule_AddIntConstant(m, "N_COLUMNS", N_COLS) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
