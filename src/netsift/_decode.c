/*
 * _decode.c: the ``fast`` decoder's L2-L4 decoding as one C loop over a batch.
 *
 * Same results as netsift.decode_fast._decode_numpy for every input (that
 * numpy code is the specification; tests/test_decode_c.py holds the two
 * together).  It reads no byte outside a record's captured bytes and builds
 * no Python object per packet.  Header layouts: RFC 791 (IPv4), RFC 8200
 * (IPv6 and extension headers), RFC 4302 (AH), RFC 9293 (TCP), RFC 768 (UDP),
 * RFC 792/4443 (ICMP/ICMPv6), IEEE 802.1Q/802.1ad, tcpdump.org's
 * LINKTYPE_LINUX_SLL/SLL2/NULL/LOOP, Wireshark's packet-null.c.
 *
 * decode(buf, off, caplen, wirelen, link_type, outputs) -> None
 *   buf: uint8 buffer; off/caplen/wirelen: int64[n]; link_type: int32[n];
 *   outputs: a tuple of the writable column arrays, in the order of
 *   OUT_ITEMSIZE below (decode_fast.C_COLUMNS), each of length n.  Every
 *   element of every output is written (absent values included).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_buffers.h"
#include <stdint.h>
#include <string.h>

/* anomaly bits: netsift.columns.ANOMALY_CODES order */
#define A_UNSUPPORTED_LINK (1u << 0)
#define A_TRUNC_LINK (1u << 1)
#define A_TRUNC_IP (1u << 2)
#define A_BAD_IP_VERSION (1u << 3)
#define A_BAD_IHL (1u << 4)
#define A_BAD_TOTAL (1u << 5)
#define A_IP_LEN_EXCEEDS (1u << 6)
#define A_IP_LEN_ZERO (1u << 7)
#define A_TRUNC_L4 (1u << 8)
#define A_BAD_TCP_HLEN (1u << 9)
#define A_BAD_UDP_LEN (1u << 10)
#define A_V6_CHAIN_LONG (1u << 11)
#define A_VLAN_DEEP (1u << 12)

/* netsift.columns L2_* codes */
#define L2_NONE 0
#define L2_ETHERNET 1
#define L2_SLL 2
#define L2_SLL2 3
#define L2_RAW 4
#define L2_NULL 5

#define MAX_VLAN_TAGS 8
#define MAX_IPV6_EXT 8
#define V4_MAPPED 0xFFFF00000000ULL
/* Records are far apart in the buffer (a packet each): fetch the headers ahead. */
#define PREFETCH_AHEAD 8
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

enum {
    O_L2, O_ETH_TYPE, O_VLAN_DEPTH, O_VLAN_OUTER, O_VLAN_INNER, O_L3_OFF, O_IP_VERSION,
    O_IP_SRC_HI, O_IP_SRC_LO, O_IP_DST_HI, O_IP_DST_LO, O_IP_PROTO, O_IP_TTL, O_IP_ID,
    O_IP_LEN, O_IP_HDR_LEN, O_IP_DF, O_FRAG_MF, O_FRAG_OFFSET, O_IS_FRAGMENT, O_L4_OFF,
    O_SPORT, O_DPORT, O_TCP_FLAGS, O_TCP_SEQ, O_TCP_ACK, O_TCP_WINDOW, O_ICMP_TYPE,
    O_ICMP_CODE, O_PAYLOAD_OFF, O_PAYLOAD_LEN, O_ANOMALIES, N_OUT
};

static const Py_ssize_t OUT_ITEMSIZE[N_OUT] = {
    1, 2, 1, 2, 2, 4, 1,  /* l2 .. ip_version */
    8, 8, 8, 8, 1, 1, 4,  /* ip_src_hi .. ip_id */
    4, 4, 1, 1, 4, 1, 4,  /* ip_len .. l4_off */
    2, 2, 2, 4, 4, 2, 1,  /* sport .. icmp_type */
    1, 4, 4, 4,           /* icmp_code .. anomalies */
};

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64(const unsigned char *p) {
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}
static inline int is_tpid(uint32_t et) {
    return et == 0x8100 || et == 0x88A8 || et == 0x9100 || et == 0x9200;
}
static inline int is_v6_ext(uint32_t nh) {
    return nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 139 || nh == 140 || nh == 44 ||
           nh == 51;
}

static int link_code(int32_t lt) {
    switch (lt) {
    case 0: case 108: return L2_NULL;
    case 1: return L2_ETHERNET;
    case 12: case 14: case 101: case 228: case 229: return L2_RAW;
    case 113: return L2_SLL;
    case 276: return L2_SLL2;
    default: return L2_NONE;
    }
}

/* Ethertype of a BSD NULL/LOOP header (4 captured bytes at s): see _null_family. */
static uint32_t null_family(const unsigned char *s, int32_t lt) {
    int64_t h;
    if (lt == 108) {
        h = (int64_t)be32(s);
    } else {
        h = (int64_t)((uint32_t)s[0] | ((uint32_t)s[1] << 8) | ((uint32_t)s[2] << 16) |
                      ((uint32_t)s[3] << 24));
        int upper = (h & 0xFFFF0000LL) != 0;
        int irix = upper && (h & 0xFF000000LL) == 0 && (h & 0x00FF0000LL) < 0x00060000LL;
        if (irix) {
            h = h >> 16;
        } else if (upper) {
            h = ((h & 0xFF) << 24) | ((h & 0xFF00) << 8) | ((h >> 8) & 0xFF00) | ((h >> 24) & 0xFF);
        } else if ((h & 0xFF) == 0 && (h & 0xFF00) < 0x0600) {
            int64_t low16 = h & 0xFFFF;
            h = ((low16 & 0xFF) << 8) | (low16 >> 8);
        }
    }
    uint32_t et = 0;
    if (h > 1500) et = (uint32_t)(h & 0xFFFF);
    if (h == 2) et = 0x0800;
    if (h == 24 || h == 28 || h == 30) et = 0x86DD;
    if (s[0] == 0xFF && s[1] == 0x03) et = 0;
    return et;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *buf_obj, *off_obj, *cap_obj, *wire_obj, *lt_obj, *outs;
    if (!PyArg_ParseTuple(args, "OOOOOO!", &buf_obj, &off_obj, &cap_obj, &wire_obj, &lt_obj,
                          &PyTuple_Type, &outs))
        return NULL;
    if (PyTuple_GET_SIZE(outs) != N_OUT) {
        PyErr_Format(PyExc_TypeError, "expected %d output arrays", (int)N_OUT);
        return NULL;
    }
    Py_buffer in[5], out[N_OUT];
    int n_in = 0, n_out = 0;
    PyObject *result = NULL;
    if (get_buffer(buf_obj, &in[0], 1, "buf") < 0) goto done;
    n_in = 1;
    if (get_buffer(off_obj, &in[1], 8, "off") < 0) goto done;
    n_in = 2;
    if (get_buffer(cap_obj, &in[2], 8, "caplen") < 0) goto done;
    n_in = 3;
    if (get_buffer(wire_obj, &in[3], 8, "wirelen") < 0) goto done;
    n_in = 4;
    if (get_buffer(lt_obj, &in[4], 4, "link_type") < 0) goto done;
    n_in = 5;
    const Py_ssize_t n = in[1].len / 8;
    if (in[2].len / 8 != n || in[3].len / 8 != n || in[4].len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "off, caplen, wirelen and link_type differ in length");
        goto done;
    }
    for (; n_out < N_OUT; n_out++) {
        PyObject *o = PyTuple_GET_ITEM(outs, n_out);
        if (PyObject_GetBuffer(o, &out[n_out], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
        if (out[n_out].itemsize != OUT_ITEMSIZE[n_out]) {
            PyBuffer_Release(&out[n_out]);
            PyErr_Format(PyExc_TypeError, "output array %d has the wrong item size", n_out);
            goto done;
        }
        if (out[n_out].len / out[n_out].itemsize != n) {
            PyBuffer_Release(&out[n_out]);
            PyErr_Format(PyExc_ValueError, "output array %d has the wrong length", n_out);
            goto done;
        }
    }
    const unsigned char *b = (const unsigned char *)in[0].buf;
    const int64_t blen = (int64_t)in[0].len;
    const int64_t *off = (const int64_t *)in[1].buf;
    const int64_t *caplen = (const int64_t *)in[2].buf;
    const int64_t *wirelen = (const int64_t *)in[3].buf;
    const int32_t *ltype = (const int32_t *)in[4].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (off[i] < 0 || caplen[i] < 0 || caplen[i] > blen || off[i] > blen - caplen[i]) {
            PyErr_Format(PyExc_ValueError, "record %zd lies outside the buffer", i);
            goto done;
        }
    }

    uint8_t *o_l2 = out[O_L2].buf, *o_vdepth = out[O_VLAN_DEPTH].buf;
    uint16_t *o_et = out[O_ETH_TYPE].buf, *o_vout = out[O_VLAN_OUTER].buf;
    uint16_t *o_vin = out[O_VLAN_INNER].buf;
    int32_t *o_l3 = out[O_L3_OFF].buf;
    uint8_t *o_ipv = out[O_IP_VERSION].buf;
    uint64_t *o_shi = out[O_IP_SRC_HI].buf, *o_slo = out[O_IP_SRC_LO].buf;
    uint64_t *o_dhi = out[O_IP_DST_HI].buf, *o_dlo = out[O_IP_DST_LO].buf;
    uint8_t *o_proto = out[O_IP_PROTO].buf, *o_ttl = out[O_IP_TTL].buf;
    uint32_t *o_id = out[O_IP_ID].buf;
    int32_t *o_iplen = out[O_IP_LEN].buf, *o_hlen = out[O_IP_HDR_LEN].buf;
    uint8_t *o_df = out[O_IP_DF].buf, *o_mf = out[O_FRAG_MF].buf;
    int32_t *o_fo = out[O_FRAG_OFFSET].buf;
    uint8_t *o_isfrag = out[O_IS_FRAGMENT].buf;
    int32_t *o_l4 = out[O_L4_OFF].buf;
    uint16_t *o_sport = out[O_SPORT].buf, *o_dport = out[O_DPORT].buf;
    uint16_t *o_flags = out[O_TCP_FLAGS].buf;
    uint32_t *o_seq = out[O_TCP_SEQ].buf, *o_ack = out[O_TCP_ACK].buf;
    uint16_t *o_win = out[O_TCP_WINDOW].buf;
    uint8_t *o_itype = out[O_ICMP_TYPE].buf, *o_icode = out[O_ICMP_CODE].buf;
    int32_t *o_poff = out[O_PAYLOAD_OFF].buf, *o_plen = out[O_PAYLOAD_LEN].buf;
    uint32_t *o_anom = out[O_ANOMALIES].buf;

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t start = off[i];
        const int64_t cl = caplen[i];
        const int64_t end = start + cl;
        const int32_t lt = ltype[i];
        uint32_t anom = 0, et = 0;
        int code = link_code(lt);
        uint8_t vdepth = 0;
        uint16_t vout = 0, vin = 0;
        int64_t l3 = -1;
        uint8_t ipv = 0, proto = 0, ttl = 0, df = 0, mf = 0, isfrag = 0;
        uint64_t shi = 0, slo = 0, dhi = 0, dlo = 0;
        uint32_t id = 0;
        int64_t iplen = 0, hlen = 0, fo = 0;
        int64_t ip_end = 0, l4 = -1;
        uint16_t sport = 0, dport = 0, flags = 0, win = 0;
        uint32_t seq = 0, ack = 0;
        uint8_t itype = 0, icode = 0;
        int64_t l4_off = -1, poff = -1, plen = 0;
        const unsigned char *s = b + start;
        if (i + PREFETCH_AHEAD < n) { /* headers of a packet a few records ahead */
            const unsigned char *ahead = b + off[i + PREFETCH_AHEAD];
            PREFETCH(ahead);
            if (off[i + PREFETCH_AHEAD] + 64 <= blen) PREFETCH(ahead + 63);
        }

        /* ---- link layer ---- */
        if (code == L2_NONE) {
            anom |= A_UNSUPPORTED_LINK;
        } else {
            int64_t hdr = code == L2_ETHERNET ? 14 : code == L2_SLL ? 16 : code == L2_SLL2 ? 20
                        : code == L2_NULL ? 4 : 0;
            if (cl < (hdr > 1 ? hdr : 1)) {
                anom |= A_TRUNC_LINK;
            } else if (code == L2_ETHERNET) {
                et = be16(s + 12);
                l3 = start + 14;
            } else if (code == L2_SLL) {
                et = be16(s + 14);
                l3 = start + 16;
            } else if (code == L2_SLL2) {
                et = be16(s);
                l3 = start + 20;
            } else if (code == L2_NULL) {
                et = null_family(s, lt);
                l3 = start + 4;
            } else {
                if (lt == 228) et = 0x0800;
                else if (lt == 229) et = 0x86DD;
                else {
                    unsigned ver = s[0] >> 4;
                    et = ver == 4 ? 0x0800 : ver == 6 ? 0x86DD : 0;
                }
                l3 = start;
            }
        }

        /* ---- VLAN tags (Ethernet only) ---- */
        if (code == L2_ETHERNET && l3 >= 0) {
            int depth = 0;
            while (is_tpid(et)) {
                if (l3 + 4 > end) {
                    anom |= A_TRUNC_LINK;
                    et = 0;
                    l3 = -1;
                    break;
                }
                if (depth == MAX_VLAN_TAGS) {
                    anom |= A_VLAN_DEEP;
                    l3 = -1;
                    break;
                }
                uint16_t vid = (uint16_t)(be16(b + l3) & 0x0FFF);
                if (depth == 0) vout = vid;
                else if (depth == 1) vin = vid;
                et = be16(b + l3 + 2);
                l3 += 4;
                vdepth++;
                depth++;
            }
        }

        const int64_t wire_end = start + (wirelen[i] > cl ? wirelen[i] : cl);

        /* ---- IPv4 ---- */
        if (l3 >= 0 && et == 0x0800) {
            const int64_t p = l3;
            const unsigned char *h = b + p;
            if (p + 20 > end) {
                anom |= A_TRUNC_IP;
            } else if ((h[0] >> 4) != 4) {
                anom |= A_BAD_IP_VERSION;
            } else if ((int64_t)(h[0] & 0x0F) * 4 < 20) {
                anom |= A_BAD_IHL;
            } else {
                const int64_t ihl = (int64_t)(h[0] & 0x0F) * 4;
                ipv = 4;
                const int64_t total = be16(h + 2);
                id = be16(h + 4);
                const uint32_t ff = be16(h + 6);
                df = (ff & 0x4000) != 0;
                mf = (ff & 0x2000) != 0;
                fo = (int64_t)(ff & 0x1FFF) * 8;
                isfrag = mf || fo > 0;
                ttl = h[8];
                proto = h[9];
                slo = (uint64_t)be32(h + 12) | V4_MAPPED;
                dlo = (uint64_t)be32(h + 16) | V4_MAPPED;
                hlen = ihl;
                const int64_t avail = wire_end - p;
                const int zero = total == 0;
                if (zero) anom |= A_IP_LEN_ZERO;
                const int bad_total = total < ihl && !zero;
                if (bad_total) anom |= A_BAD_TOTAL;
                if (total > avail) anom |= A_IP_LEN_EXCEEDS;
                const int64_t used = zero ? avail : (total < avail ? total : avail);
                iplen = zero ? avail : total;
                ip_end = p + used;
                const int hdr_cut = p + ihl > end;
                if (hdr_cut) anom |= A_TRUNC_IP;
                if (!hdr_cut && !bad_total && fo == 0) l4 = p + ihl;
            }
        }
        /* ---- IPv6 ---- */
        else if (l3 >= 0 && et == 0x86DD) {
            const int64_t p = l3;
            const unsigned char *h = b + p;
            if (p + 40 > end) {
                anom |= A_TRUNC_IP;
            } else if ((h[0] >> 4) != 6) {
                anom |= A_BAD_IP_VERSION;
            } else {
                ipv = 6;
                shi = be64(h + 8);
                slo = be64(h + 16);
                dhi = be64(h + 24);
                dlo = be64(h + 32);
                ttl = h[7];
                const int64_t pl = be16(h + 4);
                const int64_t avail = wire_end - p;
                const int zero = pl == 0;
                const int64_t total = 40 + pl;
                if (total > avail) anom |= A_IP_LEN_EXCEEDS;
                const int64_t used = zero ? avail : (total < avail ? total : avail);
                iplen = zero ? avail : total;
                ip_end = p + used;
                uint32_t nh = h[6];
                if (zero && nh != 0) anom |= A_IP_LEN_ZERO;
                int64_t pos = p + 40;
                int cut = 0, hops = 0;
                int64_t fo6 = 0;
                int too_long = 0;
                while (is_v6_ext(nh)) {
                    if (hops == MAX_IPV6_EXT) {
                        anom |= A_V6_CHAIN_LONG; /* not cut: we stop following it */
                        too_long = 1;
                        break;
                    }
                    hops++;
                    if (pos + 8 > end) {
                        cut = 1;
                        break;
                    }
                    const unsigned char *e = b + pos;
                    int64_t elen;
                    if (nh == 51) {
                        elen = ((int64_t)e[1] + 2) * 4;
                    } else if (nh == 44) {
                        elen = 8;
                        const int64_t word = be16(e + 2);
                        fo6 = word & 0xFFF8;
                        fo = word & 0xFFF8;
                        mf = (word & 1) != 0;
                        id = be32(e + 4);
                        isfrag = 1;
                    } else {
                        elen = ((int64_t)e[1] + 1) * 8;
                    }
                    nh = e[0];
                    pos += elen;
                    if (pos > end) {
                        cut = 1;
                        break;
                    }
                }
                proto = (uint8_t)nh;
                hlen = pos - p;
                if (cut) anom |= A_TRUNC_IP;
                if (!cut && !too_long && fo6 == 0) l4 = pos;
            }
        }

        /* ---- transport ---- */
        if (l4 >= 0) {
            const int64_t p = l4;
            const int64_t l4_end = end < ip_end ? end : ip_end;
            const unsigned char *h = b + p;
            if (proto == 6) {
                if (p + 20 > l4_end) {
                    anom |= A_TRUNC_L4;
                } else {
                    l4_off = p - start;
                    sport = (uint16_t)be16(h);
                    dport = (uint16_t)be16(h + 2);
                    seq = be32(h + 4);
                    ack = be32(h + 8);
                    const uint32_t word = be16(h + 12);
                    flags = (uint16_t)(word & 0x01FF);
                    win = (uint16_t)be16(h + 14);
                    const int64_t doff = (int64_t)(word >> 12) * 4;
                    const int64_t pay = ip_end - (p + doff);
                    if (doff < 20 || pay < 0) {
                        anom |= A_BAD_TCP_HLEN;
                    } else {
                        poff = p + doff - start;
                        plen = pay;
                    }
                }
            } else if (proto == 17) {
                if (p + 8 > l4_end) {
                    anom |= A_TRUNC_L4;
                } else {
                    l4_off = p - start;
                    sport = (uint16_t)be16(h);
                    dport = (uint16_t)be16(h + 2);
                    const int64_t ulen = be16(h + 4);
                    const int64_t room = ip_end - p;
                    const int bad = (ulen < 8 || ulen > room) && !isfrag;
                    if (bad) anom |= A_BAD_UDP_LEN;
                    const int64_t pay = (bad || isfrag) ? room - 8 : ulen - 8;
                    poff = p + 8 - start;
                    plen = pay > 0 ? pay : 0;
                }
            } else if (proto == 1 || proto == 58) {
                if (p + 8 > l4_end) {
                    anom |= A_TRUNC_L4;
                } else {
                    l4_off = p - start;
                    itype = h[0];
                    icode = h[1];
                    poff = p + 8 - start;
                    const int64_t pay = ip_end - p - 8;
                    plen = pay > 0 ? pay : 0;
                }
            }
        }

        o_l2[i] = (uint8_t)code;
        o_et[i] = (uint16_t)et;
        o_vdepth[i] = vdepth;
        o_vout[i] = vout;
        o_vin[i] = vin;
        o_l3[i] = l3 >= 0 ? (int32_t)(l3 - start) : -1;
        o_ipv[i] = ipv;
        o_shi[i] = shi;
        o_slo[i] = slo;
        o_dhi[i] = dhi;
        o_dlo[i] = dlo;
        o_proto[i] = proto;
        o_ttl[i] = ttl;
        o_id[i] = id;
        o_iplen[i] = (int32_t)iplen;
        o_hlen[i] = (int32_t)hlen;
        o_df[i] = df;
        o_mf[i] = mf;
        o_fo[i] = (int32_t)fo;
        o_isfrag[i] = isfrag;
        o_l4[i] = (int32_t)l4_off;
        o_sport[i] = sport;
        o_dport[i] = dport;
        o_flags[i] = flags;
        o_seq[i] = seq;
        o_ack[i] = ack;
        o_win[i] = win;
        o_itype[i] = itype;
        o_icode[i] = icode;
        o_poff[i] = (int32_t)poff;
        o_plen[i] = (int32_t)plen;
        o_anom[i] = anom;
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    for (int k = 0; k < n_out; k++) PyBuffer_Release(&out[k]);
    for (int k = 0; k < n_in; k++) PyBuffer_Release(&in[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "Decode L2-L4 headers of a batch into column arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_decode", "L2-L4 header decoding of a record batch, in C.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__decode(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "N_OUTPUTS", N_OUT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
