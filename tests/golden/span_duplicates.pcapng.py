"""Golden capture: SPAN duplicates and out-of-order timestamps -> span_duplicates.pcapng.

An SSH-like TCP exchange and syslog datagrams on one Ethernet interface
(nanosecond timestamps), where a SPAN port copied some frames byte for byte
5 µs after the original; one copy lands 4 frames after its original (still
inside the editcap -D window of 4 frames back), one 2 µs *before* its
original's timestamp (a duplicate and out of order).  Not duplicates by
netsift's rules (stats.DUP_FRAMES_BACK, stats.DUP_WINDOW_NS): a copy 5 frames
after its original, and an identical TCP retransmission 200 ms after it.  All
copies are a few ms from their original at most, so the verdicts do not
depend on the exact time window (10 ms today, 100 ms before).
Two more frames carry timestamps earlier than the frame before them.

Run: python span_duplicates.pcapng.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from truth import Capture, Frame, Interface, output_dir

C, S, LOG = "10.1.0.10", "10.1.0.20", "10.1.0.30"
MS, US = 1_000_000, 1_000
T0 = 1_700_000_100_000_000_000

cap = Capture(
    name="span_duplicates.pcapng",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=1, snaplen=262144, name="span0", tsresol=9)],
)


def original(i: int, ts_ns: int) -> Frame:
    """The i-th distinct frame: every third one a syslog datagram, others TCP data/ACKs."""
    if i % 3 == 2:
        pkt = (Ether(src="02:00:00:00:02:0a", dst="02:00:00:00:02:1e")
               / IP(src=C, dst=LOG, id=1000 + i) / UDP(sport=514, dport=514)
               / Raw(f"<13>host app: event {i}".encode()))
        return cap.add(pkt, "ip:udp", ts_ns=ts_ns, src=C, dst=LOG, udp=(514, 514))
    from_c = i % 2 == 0
    s, d, sp, dp = (C, S, 51000, 22) if from_c else (S, C, 22, 51000)
    flags = 0x18 if i % 4 else 0x10
    pkt = (Ether(src="02:00:00:00:02:0a", dst="02:00:00:00:02:14")
           / IP(src=s, dst=d, id=2000 + i) / TCP(sport=sp, dport=dp, flags=flags, seq=100 * i,
                                                 ack=100 * i + 1)
           / Raw(bytes([i]) * (48 if flags == 0x18 else 0)))
    return cap.add(pkt, "ip:tcp", ts_ns=ts_ns, src=s, dst=d, tcp=(sp, dp, flags))


def again(f: Frame, ts_ns: int, *, copy: bool) -> None:
    """The same bytes once more: a counted duplicate (copy) or a repeat that is not one."""
    cap.add(f.wire, f.path, ts_ns=ts_ns, src=f.src, dst=f.dst, tcp=f.tcp, udp=f.udp,
            copy=copy, repeat=not copy)


STEP = 2 * MS  # originals 2 ms apart: every copy below is well inside any duplicate window
t = T0
frames: dict[int, Frame] = {}
for i in range(1, 27):
    t += STEP + (200 * MS if i == 25 else 0)  # 25 follows the retransmission of 24
    ts = {11: t - 3 * MS,  # 1 ms before frame 10: out of order
          16: t + STEP,  # 16 and 17 swap times: 17 is out of order
          17: t - 2 * STEP}.get(i, t)
    frames[i] = f = original(i, ts)
    if i in (3, 6, 9, 12):
        again(f, ts + 5 * US, copy=True)  # SPAN copy right behind the original
    if i == 21:
        again(f, ts - 2 * US, copy=True)  # copy stamped before the original: out of order too
    if i == 18:
        again(frames[15], ts + 500 * US, copy=True)  # 15 is 4 frames back: a duplicate
    if i == 22:
        again(frames[19], ts + 500 * US, copy=False)  # 19 is 5 frames back: outside the window
    if i == 24:
        again(f, ts + 200 * MS, copy=False)  # identical retransmission, 200 ms later

if __name__ == "__main__":
    cap.write(output_dir(__file__))
