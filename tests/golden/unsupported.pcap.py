"""Golden capture: 802.11 with radiotap headers (LINKTYPE_IEEE802_11_RADIOTAP, 127).

A link type netsift counts but does not decode: three beacons and a data
frame that carries LLC/SNAP/IPv4/UDP.  Every frame is counted (packets,
bytes, link types, anomaly unsupported_link_type, verdict "degraded" with
reason unsupported_link_type) and nothing inside is decoded: the IPv4
addresses and ports in the data frame must not appear anywhere.

Run: python unsupported.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, RadioTap
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, SNAP
from truth import Capture, Interface, output_dir

AP, STA = "02:00:00:00:11:01", "02:00:00:00:11:02"

cap = Capture(
    name="unsupported.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=127, snaplen=262144)],
    step_ns=102_400_000,  # one beacon interval (100 TU)
)
for i in range(3):
    cap.add(RadioTap() / Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2=AP, addr3=AP,
                               SC=i << 4)
            / Dot11Beacon(timestamp=i * 102400, beacon_interval=100)
            / Dot11Elt(ID=0, info=b"golden") / Dot11Elt(ID=3, info=b"\x06"),
            "", anomalies=("unsupported_link_type",))
cap.add(RadioTap() / Dot11(type=2, subtype=0, FCfield=0x01,  # to-DS
                                 addr1=AP, addr2=STA, addr3=AP)
        / LLC() / SNAP() / IP(src="10.11.0.2", dst="10.11.0.1") / UDP(sport=5000, dport=5001)
        / b"not decoded", "", anomalies=("unsupported_link_type",))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
