"""The ``fast`` decoder: L2–L4 columns for a whole batch with numpy, no per-packet Python.

Written by hand because no maintained library decodes packet headers in a
vectorized way.  Every step works on index arrays of the packets it applies to
(all Ethernet frames, all IPv4 packets, ...): gather the header bytes, check
that they were captured, compute fields, scatter them into the columns.
Header layouts follow RFC 791 (IPv4), RFC 8200 (IPv6 and its extension
headers), RFC 9293 (TCP), RFC 768 (UDP), RFC 792/4443 (ICMP/ICMPv6), IEEE
802.1Q/802.1ad (VLAN tags) and tcpdump.org's LINKTYPE_LINUX_SLL/SLL2/NULL.

The ``scapy`` decoder (:mod:`netsift.decode_scapy`) is the reference: both must
produce identical columns for every input, hostile ones included.

:func:`decode` runs the same decoding in C (``netsift._decode``, one loop over
the records, built at install time) when the extension is importable, and the
numpy code here (:func:`_decode_numpy`, the specification of the C code)
otherwise.  ``IMPLEMENTATION`` says which one is in use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .columns import (
    ANOMALY_BIT,
    COLUMN_DTYPES,
    L2_ETHERNET,
    L2_NONE,
    L2_NULL,
    L2_SLL,
    L2_SLL2,
    LINK_TYPES,
    V4_MAPPED,
    PacketColumns,
)

I64 = npt.NDArray[np.int64]
Idx = npt.NDArray[np.intp]

#: VLAN tag protocol identifiers followed: 802.1Q, 802.1ad, and the
#: pre-standard QinQ values still seen in the wild.
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100, 0x9200)
MAX_VLAN_TAGS = 8
#: IPv6 extension headers with the generic (next header, length in 8-octet
#: units minus one) layout (RFC 8200 §4; 135 mobility, 139 HIP, 140 shim6).
IPV6_GENERIC_EXT = (0, 43, 60, 135, 139, 140)
IPV6_FRAGMENT = 44
IPV6_AH = 51  # length in 4-octet units minus two (RFC 4302)
MAX_IPV6_EXT = 8

_BIT = ANOMALY_BIT


def _gather(buf: npt.NDArray[np.uint8], pos: I64, width: int, dtype: str) -> npt.NDArray[np.generic]:
    """Read one field of ``width`` bytes at each position (positions are valid)."""
    if width == 1:
        return buf[pos]
    if dtype == ">u2":
        out: npt.NDArray[np.generic] = (buf[pos].astype(np.uint16) << 8) | buf[pos + 1]
        return out
    idx = pos[:, None] + np.arange(width, dtype=np.int64)
    out = buf[idx].view(dtype).reshape(pos.shape[0])
    return out


def _window(buf: npt.NDArray[np.uint8], pos: I64, width: int) -> npt.NDArray[np.uint8]:
    """The ``width`` bytes at each position as an (n, width) matrix (positions are valid)."""
    out: npt.NDArray[np.uint8] = buf[pos[:, None] + np.arange(width, dtype=np.int64)]
    return out


def _be16(m: npt.NDArray[np.uint8], i: int) -> I64:
    return (m[:, i].astype(np.int64) << 8) | m[:, i + 1]


def _be32(m: npt.NDArray[np.uint8], i: int) -> I64:
    return (_be16(m, i) << 16) | _be16(m, i + 2)


def _be64(m: npt.NDArray[np.uint8], i: int) -> npt.NDArray[np.uint64]:
    out: npt.NDArray[np.uint64] = np.ascontiguousarray(m[:, i : i + 8]).view(">u8").reshape(-1)
    return out


def _null_family(buf: npt.NDArray[np.uint8], s: I64, link_type: int) -> npt.NDArray[np.uint16]:
    """Ethertype for BSD NULL/LOOP headers, resolved the way Wireshark's packet-null.c does.

    DLT_NULL carries an AF_ value in the writer's byte order (read here as a
    little-endian host would, like the reference tshark run); IRIX snoop puts
    a 16-bit AF_ value in the upper half; old Linux libpcap wrote an ethertype.
    Values above 1500 are ethertypes; BSD AF_INET is 2, AF_INET6 is 24
    (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (Darwin).  FF 03 starts a PPP frame.
    """
    if link_type == 108:  # LINKTYPE_LOOP: network byte order
        h = _gather(buf, s, 4, ">u4").astype(np.int64)
    else:
        h = _gather(buf, s, 4, "<u4").astype(np.int64)
        upper = (h & 0xFFFF0000) != 0
        irix = upper & ((h & 0xFF000000) == 0) & ((h & 0x00FF0000) < 0x00060000)
        swapped = (
            ((h & 0xFF) << 24) | ((h & 0xFF00) << 8) | ((h >> 8) & 0xFF00) | ((h >> 24) & 0xFF)
        )
        low16 = h & 0xFFFF
        irix_swapped = ~upper & ((h & 0xFF) == 0) & ((h & 0xFF00) < 0x0600)
        h = np.where(
            irix, h >> 16,
            np.where(upper, swapped,
                     np.where(irix_swapped, ((low16 & 0xFF) << 8) | (low16 >> 8), h)),
        )
    ppp = (buf[s] == 0xFF) & (buf[s + 1] == 0x03)
    et = np.zeros(h.shape[0], dtype=np.uint16)
    is_etype = h > 1500
    et[is_etype] = (h[is_etype] & 0xFFFF).astype(np.uint16)
    et[h == 2] = 0x0800
    et[np.isin(h, (24, 28, 30))] = 0x86DD
    et[ppp] = 0
    return et


def _decode_numpy(batch: RecordBatch) -> PacketColumns:
    n = len(batch)
    c = PacketColumns.empty(n)
    buf = batch.buf
    start = batch.off
    caplen = batch.caplen
    end = start + caplen
    c.frame[:] = batch.first_frame + np.arange(n, dtype=np.int64)
    c.ts_ns[:] = batch.ts_ns
    c.caplen[:] = caplen
    c.wirelen[:] = batch.wirelen
    c.link_type[:] = batch.link_type
    anomalies = c.anomalies

    # ---- link layer: l2 code, ethertype, offset of the network header ----------
    l2 = c.l2
    eth_type = c.eth_type
    l3 = np.full(n, -1, dtype=np.int64)  # absolute offset in buf
    lts = batch.link_type
    single = n > 0 and bool((lts == lts[0]).all())  # one link type per batch is the rule
    for lt in [int(lts[0])] if single else np.unique(lts).tolist():
        sel = np.arange(n) if single else np.nonzero(lts == lt)[0]
        code = LINK_TYPES.get(lt, (L2_NONE, ""))[0]
        if code == L2_NONE:
            anomalies[sel] |= _BIT["unsupported_link_type"]
            continue
        l2[sel] = code
        s = start[sel]
        cl = caplen[sel]
        if code == L2_ETHERNET:
            hdr = 14
        elif code == L2_SLL:
            hdr = 16
        elif code == L2_SLL2:
            hdr = 20
        elif code == L2_NULL:
            hdr = 4
        else:
            hdr = 0
        short = cl < max(hdr, 1)
        anomalies[sel[short]] |= _BIT["truncated_link_header"]
        ok = sel[~short]
        s = s[~short]
        if code == L2_ETHERNET:
            eth_type[ok] = _gather(buf, s + 12, 2, ">u2")
            l3[ok] = s + 14
        elif code == L2_SLL:
            eth_type[ok] = _gather(buf, s + 14, 2, ">u2")
            l3[ok] = s + 16
        elif code == L2_SLL2:
            eth_type[ok] = _gather(buf, s, 2, ">u2")
            l3[ok] = s + 20
        elif code == L2_NULL:
            eth_type[ok] = _null_family(buf, s, lt)
            l3[ok] = s + 4
        else:  # raw IP: the version nibble says which
            if lt == 228:
                eth_type[ok] = 0x0800
            elif lt == 229:
                eth_type[ok] = 0x86DD
            else:
                ver = buf[s] >> 4
                et = np.zeros(s.shape[0], dtype=np.uint16)
                et[ver == 4] = 0x0800
                et[ver == 6] = 0x86DD
                eth_type[ok] = et
            l3[ok] = s

    # ---- VLAN tags (Ethernet only) ----------------------------------------------
    eth = np.nonzero((l2 == L2_ETHERNET) & (l3 >= 0))[0]
    tagged = eth[np.isin(eth_type[eth], VLAN_TPIDS)]
    depth = 0
    while tagged.shape[0]:
        fits = l3[tagged] + 4 <= end[tagged]
        anomalies[tagged[~fits]] |= _BIT["truncated_link_header"]
        eth_type[tagged[~fits]] = 0
        l3[tagged[~fits]] = -1
        tagged = tagged[fits]
        if depth == MAX_VLAN_TAGS:
            anomalies[tagged] |= _BIT["vlan_stack_too_deep"]
            l3[tagged] = -1
            break
        pos = l3[tagged]
        vid = _gather(buf, pos, 2, ">u2").astype(np.int64) & 0x0FFF
        if depth == 0:
            c.vlan_outer[tagged] = vid
        elif depth == 1:
            c.vlan_inner[tagged] = vid
        eth_type[tagged] = _gather(buf, pos + 2, 2, ">u2")
        l3[tagged] = pos + 4
        c.vlan_depth[tagged] += 1
        depth += 1
        tagged = tagged[np.isin(eth_type[tagged], VLAN_TPIDS)]

    # Offsets where the frame has no bytes left for the network layer.
    has_l3 = l3 >= 0
    c.l3_off[has_l3] = (l3[has_l3] - start[has_l3]).astype(np.int32)

    ip_end = np.zeros(n, dtype=np.int64)  # wire end of the IP datagram (absolute)
    l4 = np.full(n, -1, dtype=np.int64)
    # Wire end of the frame: record start + original length.  Using it (not the
    # captured length) keeps header-derived lengths independent of snaplen.
    wire_end = start + np.maximum(batch.wirelen, caplen)

    # ---- IPv4 -----------------------------------------------------------------------
    v4 = np.nonzero(has_l3 & (eth_type == 0x0800))[0]
    if v4.shape[0]:
        p = l3[v4]
        short = p + 20 > end[v4]
        anomalies[v4[short]] |= _BIT["truncated_ip_header"]
        v4, p = v4[~short], p[~short]
        b0 = buf[p]
        bad_ver = (b0 >> 4) != 4
        anomalies[v4[bad_ver]] |= _BIT["bad_ip_version"]
        v4, p, b0 = v4[~bad_ver], p[~bad_ver], b0[~bad_ver]
        ihl = (b0 & 0x0F).astype(np.int64) * 4
        bad_ihl = ihl < 20
        anomalies[v4[bad_ihl]] |= _BIT["bad_ip_header_length"]
        v4, p, ihl = v4[~bad_ihl], p[~bad_ihl], ihl[~bad_ihl]
        # From here on the packet is IPv4 with readable fixed header fields.
        h = _window(buf, p, 20)
        c.ip_version[v4] = 4
        total = _be16(h, 2)
        c.ip_id[v4] = _be16(h, 4)
        ff = _be16(h, 6)
        c.ip_df[v4] = (ff & 0x4000) != 0
        mf = (ff & 0x2000) != 0
        fo = (ff & 0x1FFF) * 8
        c.frag_mf[v4] = mf
        c.frag_offset[v4] = fo
        c.is_fragment[v4] = mf | (fo > 0)
        c.ip_ttl[v4] = h[:, 8]
        c.ip_proto[v4] = h[:, 9]
        c.ip_src_lo[v4] = _be32(h, 12).astype(np.uint64) | V4_MAPPED
        c.ip_dst_lo[v4] = _be32(h, 16).astype(np.uint64) | V4_MAPPED
        c.ip_hdr_len[v4] = ihl
        avail = wire_end[v4] - p
        zero = total == 0
        anomalies[v4[zero]] |= _BIT["ip_length_zero"]
        bad_total = (total < ihl) & ~zero
        anomalies[v4[bad_total]] |= _BIT["bad_ip_total_length"]
        over = total > avail
        anomalies[v4[over]] |= _BIT["ip_length_exceeds_frame"]
        # Length used for payload arithmetic: the header's, bounded by the frame;
        # a zero (TSO) length means "to the end of the frame".
        used = np.where(zero, avail, np.minimum(total, avail))
        c.ip_len[v4] = np.where(zero, avail, total)
        ip_end[v4] = p + used
        hdr_cut = p + ihl > end[v4]
        anomalies[v4[hdr_cut]] |= _BIT["truncated_ip_header"]
        go = ~hdr_cut & ~bad_total & (fo == 0)
        l4[v4[go]] = p[go] + ihl[go]

    # ---- IPv6 -----------------------------------------------------------------------
    v6 = np.nonzero(has_l3 & (eth_type == 0x86DD))[0]
    if v6.shape[0]:
        p = l3[v6]
        short = p + 40 > end[v6]
        anomalies[v6[short]] |= _BIT["truncated_ip_header"]
        v6, p = v6[~short], p[~short]
        bad_ver = (buf[p] >> 4) != 6
        anomalies[v6[bad_ver]] |= _BIT["bad_ip_version"]
        v6, p = v6[~bad_ver], p[~bad_ver]
        c.ip_version[v6] = 6
        h = _window(buf, p, 40)
        c.ip_src_hi[v6] = _be64(h, 8)
        c.ip_src_lo[v6] = _be64(h, 16)
        c.ip_dst_hi[v6] = _be64(h, 24)
        c.ip_dst_lo[v6] = _be64(h, 32)
        c.ip_ttl[v6] = h[:, 7]
        plen = _be16(h, 4)
        avail = wire_end[v6] - p
        zero = plen == 0
        total = 40 + plen
        over = total > avail
        anomalies[v6[over]] |= _BIT["ip_length_exceeds_frame"]
        used = np.where(zero, avail, np.minimum(total, avail))
        c.ip_len[v6] = np.where(zero, avail, total)
        ip_end[v6] = p + used
        nh = h[:, 6].astype(np.int64)
        # A zero payload length is legitimate only in a jumbogram, which carries
        # its length in a Hop-by-Hop header right after this one (RFC 2675 §3).
        anomalies[v6[zero & (nh != 0)]] |= _BIT["ip_length_zero"]
        pos = p + 40
        # Walk the extension-header chain for the packets still inside it.
        live = np.arange(v6.shape[0])
        cut = np.zeros(v6.shape[0], dtype=bool)
        too_long = np.zeros(v6.shape[0], dtype=bool)
        frag_seen = np.zeros(v6.shape[0], dtype=bool)
        fo6 = np.zeros(v6.shape[0], dtype=np.int64)
        hops = 0
        while True:
            cur = nh[live]
            is_ext = np.isin(cur, IPV6_GENERIC_EXT) | (cur == IPV6_FRAGMENT) | (cur == IPV6_AH)
            live = live[is_ext]
            if not live.shape[0]:
                break
            if hops == MAX_IPV6_EXT:
                # Not cut: we stop following; no transport header is decoded.
                anomalies[v6[live]] |= _BIT["ipv6_extension_chain_too_long"]
                too_long[live] = True
                break
            hops += 1
            pp = pos[live]
            cur = nh[live]
            # Every extension header is at least 8 bytes; we need 8 to read it.
            fits = pp + 8 <= end[v6[live]]
            cut[live[~fits]] = True
            live, pp, cur = live[fits], pp[fits], cur[fits]
            nxt = buf[pp].astype(np.int64)
            hlen = (buf[pp + 1].astype(np.int64) + 1) * 8
            is_ah = cur == IPV6_AH
            hlen[is_ah] = (buf[pp[is_ah] + 1].astype(np.int64) + 2) * 4
            is_frag = cur == IPV6_FRAGMENT
            hlen[is_frag] = 8
            if is_frag.any():
                fl = live[is_frag]
                fp = pp[is_frag]
                word = _gather(buf, fp + 2, 2, ">u2").astype(np.int64)
                fo6[fl] = word & 0xFFF8
                frag_seen[fl] = True
                gi = v6[fl]
                c.frag_offset[gi] = word & 0xFFF8
                c.frag_mf[gi] = (word & 1) != 0
                c.ip_id[gi] = _gather(buf, fp + 4, 4, ">u4")
                c.is_fragment[gi] = True
            nh[live] = nxt
            pos[live] = pp + hlen
            over_cap = pos[live] > end[v6[live]]
            cut[live[over_cap]] = True
            live = live[~over_cap]
        c.ip_proto[v6] = nh
        c.ip_hdr_len[v6] = pos - p
        anomalies[v6[cut]] |= _BIT["truncated_ip_header"]
        go = ~cut & ~too_long & (fo6 == 0)
        l4[v6[go]] = pos[go]
        del frag_seen

    # ---- transport -----------------------------------------------------------------
    has_l4 = l4 >= 0
    proto = c.ip_proto
    # A transport header must lie in the captured bytes *and* inside the IP
    # datagram: what follows the datagram is link-layer padding, not a header.
    l4_end = np.minimum(end, ip_end)
    tcp = np.nonzero(has_l4 & (proto == 6))[0]
    if tcp.shape[0]:
        p = l4[tcp]
        short = p + 20 > l4_end[tcp]
        anomalies[tcp[short]] |= _BIT["truncated_transport_header"]
        tcp, p = tcp[~short], p[~short]
        c.l4_off[tcp] = p - start[tcp]
        h = _window(buf, p, 16)
        c.sport[tcp] = _be16(h, 0)
        c.dport[tcp] = _be16(h, 2)
        c.tcp_seq[tcp] = _be32(h, 4)
        c.tcp_ack[tcp] = _be32(h, 8)
        word = _be16(h, 12)
        c.tcp_flags[tcp] = word & 0x01FF
        c.tcp_window[tcp] = _be16(h, 14)
        doff = (word >> 12) * 4
        pay = ip_end[tcp] - (p + doff)
        bad = (doff < 20) | (pay < 0)
        anomalies[tcp[bad]] |= _BIT["bad_tcp_header_length"]
        good = tcp[~bad]
        c.payload_off[good] = (p[~bad] + doff[~bad] - start[good]).astype(np.int32)
        c.payload_len[good] = pay[~bad]

    udp = np.nonzero(has_l4 & (proto == 17))[0]
    if udp.shape[0]:
        p = l4[udp]
        short = p + 8 > l4_end[udp]
        anomalies[udp[short]] |= _BIT["truncated_transport_header"]
        udp, p = udp[~short], p[~short]
        c.l4_off[udp] = p - start[udp]
        h = _window(buf, p, 6)
        c.sport[udp] = _be16(h, 0)
        c.dport[udp] = _be16(h, 2)
        ulen = _be16(h, 4)
        room = ip_end[udp] - p
        frag = c.is_fragment[udp]
        # A first fragment's UDP length covers the whole datagram: not checkable here.
        bad = ((ulen < 8) | (ulen > room)) & ~frag
        anomalies[udp[bad]] |= _BIT["bad_udp_length"]
        pay = np.where(bad | frag, room - 8, ulen - 8)
        c.payload_off[udp] = (p + 8 - start[udp]).astype(np.int32)
        c.payload_len[udp] = np.maximum(pay, 0)

    icmp = np.nonzero(has_l4 & ((proto == 1) | (proto == 58)))[0]
    if icmp.shape[0]:
        p = l4[icmp]
        # Every ICMP/ICMPv6 message starts with an 8-byte header (RFC 792, RFC 4443 §2.1).
        short = p + 8 > l4_end[icmp]
        anomalies[icmp[short]] |= _BIT["truncated_transport_header"]
        icmp, p = icmp[~short], p[~short]
        c.l4_off[icmp] = p - start[icmp]
        c.icmp_type[icmp] = buf[p]
        c.icmp_code[icmp] = buf[p + 1]
        # The 8-byte ICMP header; what follows (echo data or a quoted packet) is payload.
        c.payload_off[icmp] = (p + 8 - start[icmp]).astype(np.int32)
        c.payload_len[icmp] = np.maximum(ip_end[icmp] - p - 8, 0)

    return c


#: The columns the C decoder fills, in the order of its ``outputs`` tuple (_decode.c).
C_COLUMNS = (
    "l2", "eth_type", "vlan_depth", "vlan_outer", "vlan_inner", "l3_off", "ip_version",
    "ip_src_hi", "ip_src_lo", "ip_dst_hi", "ip_dst_lo", "ip_proto", "ip_ttl", "ip_id",
    "ip_len", "ip_hdr_len", "ip_df", "frag_mf", "frag_offset", "is_fragment", "l4_off",
    "sport", "dport", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window", "icmp_type",
    "icmp_code", "payload_off", "payload_len", "anomalies",
)

_c_decode: Callable[..., None] | None
try:
    from ._decode import decode as _imported_c_decode

    _c_decode = _imported_c_decode
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _c_decode = None


def _decode_c(batch: RecordBatch) -> PacketColumns:
    """:func:`_decode_numpy`'s columns, computed by the C loop in ``netsift._decode``."""
    if _c_decode is None:  # pragma: no cover
        raise ImportError("netsift._decode (the C decoder) is not built")
    n = len(batch)
    # The C code writes every element of the columns it fills: no need to pre-fill them.
    values: dict[str, npt.NDArray[np.generic]] = {
        name: np.empty(n, dtype=COLUMN_DTYPES[name]) for name in C_COLUMNS
    }
    values["frame"] = batch.first_frame + np.arange(n, dtype=np.int64)
    values["ts_ns"] = np.array(batch.ts_ns, dtype=np.int64)
    values["caplen"] = caplen = np.array(batch.caplen, dtype=np.int64)
    values["wirelen"] = wirelen = np.array(batch.wirelen, dtype=np.int64)
    values["link_type"] = link_type = np.array(batch.link_type, dtype=np.int32)
    _c_decode(
        np.ascontiguousarray(batch.buf, dtype=np.uint8),
        np.ascontiguousarray(batch.off, dtype=np.int64),
        caplen,
        wirelen,
        link_type,
        tuple(values[name] for name in C_COLUMNS),
    )
    return PacketColumns(**values)  # type: ignore[arg-type]


decode: Callable[[RecordBatch], PacketColumns]
if _c_decode is not None:
    decode = _decode_c
    IMPLEMENTATION = "c"
else:  # pragma: no cover - exercised where no compiler was available
    decode = _decode_numpy
    IMPLEMENTATION = "numpy"
