"""The analyze report as one self-contained HTML page (``netsift analyze --html FILE``).

:func:`render_html` turns the report dict (:attr:`netsift.Report.data`) into a
single HTML document; :func:`write_html` writes it atomically.  The page needs
nothing but itself: the charts are inline SVG drawn here, the stylesheet and
the one small script (table sorting, the findings filters, the flow search)
are inline, and a Content-Security-Policy forbids every network request.

Everything that comes from a capture (addresses, host names, URIs, user
agents, SNIs, DNS names, the findings' summaries and evidence) is
attacker-controlled.  It reaches the page only through :func:`_esc`
(``html.escape`` with quotes, plus visible escapes for control and
bidirectional-override characters); the script reads the page with
``textContent`` and ``data-*`` attributes and never builds HTML.  See
docs/html_report.md.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .detect.finding import Severity

__all__ = ["render_html", "write_html"]

#: Most severe first, from netsift's one ordering of severities.
SEVERITIES = tuple(s.label for s in sorted(Severity, reverse=True))
_SEV_RANK = {s.label: int(s) + 1 for s in Severity}  # 0 is left for a severity the report does not know
_SEV_COLOR = {"critical": "#7f1d1d", "high": "#dc2626", "medium": "#ea580c",
              "low": "#eab308", "info": "#6b7280"}  # fmt: skip
_VERDICT_TEXT = {"good": "Good", "degraded": "Degraded", "poor": "Poor"}

# Caps that keep the page at a few MB whatever the report holds.
MAX_FINDINGS = 500
MAX_FLOWS = 200
MAX_PROTOCOL_ROWS = 200
MAX_BARS = 15
MAX_TABLE_ROWS = 50
MAX_INPUT_ROWS = 100
MAX_SCATTER_POINTS = 200
_MAX_LIST_ITEMS = 25
_MAX_TEXT = 2000
_MAX_FRAMES = 50

_SERVICES = {
    20: "ftp-data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 67: "dhcp",
    68: "dhcp", 69: "tftp", 80: "http", 88: "kerberos", 110: "pop3", 123: "ntp", 135: "msrpc",
    137: "netbios-ns", 138: "netbios-dgm", 139: "netbios-ssn", 143: "imap", 161: "snmp",
    162: "snmptrap", 389: "ldap", 443: "https", 445: "smb", 465: "smtps", 500: "isakmp",
    514: "syslog", 587: "submission", 636: "ldaps", 853: "dns-over-tls", 993: "imaps",
    995: "pop3s", 1194: "openvpn", 1433: "mssql", 1900: "ssdp", 3306: "mysql", 3389: "rdp",
    4500: "ipsec-nat-t", 5060: "sip", 5353: "mdns", 5355: "llmnr", 5432: "postgresql",
    5900: "vnc", 6379: "redis", 8080: "http-alt", 8443: "https-alt",
}  # fmt: skip


# --------------------------------------------------------------------------- escaping

# C0/C1 controls, bidirectional overrides and isolates (which could make an
# address or name read differently from what it is), line/paragraph
# separators and lone surrogates are shown as \uXXXX instead of being written.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
                           "\u202a-\u202e\u2066-\u2069\ud800-\udfff]")  # fmt: skip


def _visible(text: str) -> str:
    return _UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _esc(value: Any) -> str:
    """Text or attribute value for the page: visible controls, then ``html.escape(quote=True)``."""
    return html.escape(_visible(str(value)), quote=True)


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


# --------------------------------------------------------------------------- formatting


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return _esc(value)


def _si(value: float, unit: str = "") -> str:
    """1234567 -> '1.23 MB' (SI prefixes, three significant digits)."""
    n = float(value)
    for prefix in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            text = f"{n:.3g}" if prefix else f"{n:,.0f}" if n.is_integer() else f"{n:.3g}"
            return f"{text} {prefix}{unit}".rstrip()
        n /= 1000
    return f"{n:.3g} P{unit}"


def _bytes(value: Any) -> str:
    return _si(value, "B") if isinstance(value, (int, float)) else "–"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "–"


def _utc(ts: Any, millis: bool = True) -> str:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        return "–"
    try:
        moment = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "–"
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if millis else text


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {s} s"


_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$")


def _parse_time(text: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time such as ``2023-11-14T22:13:20.000000Z``."""
    if not isinstance(text, str):
        return None
    m = _ISO.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    ts = moment.timestamp() + (float("0." + m.group(7)) if m.group(7) else 0.0)
    zone = m.group(8)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        ts += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return ts


def _iso_short(text: Any) -> str:
    """'2023-11-14T22:13:20.123456Z' -> '2023-11-14 22:13:20.123'."""
    ts = _parse_time(text)
    return _utc(ts) if ts is not None else _esc(text) if text else "–"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


# --------------------------------------------------------------------------- building blocks


def _section(sid: str, title: str, body: str, intro: str = "") -> str:
    lead = f'<p class="lead">{intro}</p>' if intro else ""
    return (f'<section id="{sid}" class="card"><h2>{_esc(title)}</h2>{lead}{body}</section>')


def _panel(title: str, body: str, note: str = "", wide: bool = False) -> str:
    foot = f'<p class="note">{note}</p>' if note else ""
    cls = "panel wide" if wide else "panel"
    return f'<div class="{cls}"><h3>{_esc(title)}</h3>{body}{foot}</div>'


def _tiles(items: Iterable[tuple[str, str, str]]) -> str:
    """Stat tiles: (label, value html, title)."""
    cells = []
    for label, value, title in items:
        tip = f' title="{_esc(title)}"' if title else ""
        cells.append(f'<div class="tile"{tip}><div class="tile-v">{value}</div>'
                     f'<div class="tile-l">{_esc(label)}</div></div>')  # fmt: skip
    return '<div class="tiles">' + "".join(cells) + "</div>"


def _empty(text: str) -> str:
    return f'<p class="empty">{_esc(text)}</p>'


def _table(headers: Sequence[tuple[str, str]], rows: Sequence[Sequence[tuple[str, str]]],
           table_id: str = "", sortable: bool = True, cls: str = "") -> str:
    """A table; headers are (text, "num"|"text"), cells are (html, sort key or "")."""
    attrs = f' id="{table_id}"' if table_id else ""
    classes = " ".join(c for c in ("data", "sortable" if sortable else "", cls) if c)
    head = "".join(
        f'<th data-type="{kind}"{" class=num" if kind == "num" else ""}>{_esc(text)}</th>'
        for text, kind in headers)  # fmt: skip
    body = []
    for row in rows:
        cells = []
        for (content, key), (_, kind) in zip(row, headers, strict=False):
            sort = f' data-sort="{_esc(key)}"' if key != "" else ""
            num = ' class="num"' if kind == "num" else ""
            cells.append(f"<td{num}{sort}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    scroll = "scroll tall" if len(rows) > 25 else "scroll"
    return (f'<div class="{scroll}"><table class="{classes}"{attrs}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')  # fmt: skip


@dataclass
class _Bar:
    label: str  # html
    segments: list[tuple[float, str]]  # (value, css colour)
    value: str  # html
    title: str = ""  # plain text for the tooltip
    extra: list[str] = field(default_factory=list)  # html cells after the value


def _bar_table(bars: Sequence[_Bar], label_head: str, value_head: str,
               extra_heads: Sequence[str] = (), cls: str = "") -> str:
    """Horizontal bars as table rows: label | bar | value | extra columns."""
    if not bars:
        return _empty("None.")
    top = max((sum(v for v, _ in b.segments) for b in bars), default=0.0) or 1.0
    extra = "".join(f'<th class="num">{_esc(h)}</th>' for h in extra_heads)
    rows = []
    for b in bars:
        spans = "".join(
            f'<span style="width:{max(0.0, 100.0 * v / top):.2f}%;background:{colour}"></span>'
            for v, colour in b.segments if v > 0)  # fmt: skip
        tip = f' title="{_esc(b.title)}"' if b.title else ""
        cells = "".join(f'<td class="num">{c}</td>' for c in b.extra)
        rows.append(f'<tr{tip}><td class="bl">{b.label}</td><td class="bb"><div class="bar">{spans}'
                    f'</div></td><td class="num">{b.value}</td>{cells}</tr>')  # fmt: skip
    return (f'<table class="bars {cls}"><thead><tr><th>{_esc(label_head)}</th><th></th>'
            f'<th class="num">{_esc(value_head)}</th>{extra}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')  # fmt: skip


_NUM_CLASS = ' class="num"'
_ACCENT = "#2563eb"
_ACCENT2 = "#0d9488"


def _ranked_bars(ranked: Any, label_head: str, value_head: str = "Count",
                 limit: int = MAX_BARS) -> str:
    """Bars of a {name: count} mapping, largest first."""
    items = [(str(k), _int(v)) for k, v in _dict(ranked).items()]
    items.sort(key=lambda kv: -kv[1])
    total = sum(v for _, v in items)
    bars = [_Bar(f"<code>{_esc(_clip(k, 200))}</code>", [(v, _ACCENT)], _num(v),
                 f"{k}: {v:,} ({_pct(v, total)})") for k, v in items[:limit]]  # fmt: skip
    more = f'<p class="note">{len(items) - limit:,} more not shown.</p>' if len(items) > limit else ""
    return _bar_table(bars, label_head, value_head) + more


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten, at least 1: the axes count things)."""
    if span <= ticks:
        return 1.0
    raw = span / ticks
    mag = 10.0 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * mag:
            return max(1.0, mult * mag)
    return 10 * mag


def _tick_label(value: float, bytes_unit: bool = False) -> str:
    if bytes_unit:
        return _si(value, "B")
    if value >= 10000:
        return _si(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


# --------------------------------------------------------------------------- header


def _header(report: dict[str, Any]) -> str:
    tool = _dict(report.get("tool"))
    run = _dict(report.get("run"))
    inputs = _list(report.get("inputs"))
    names = [str(_dict(i).get("path", "")) for i in inputs]
    shown = names[0].replace("\\", "/").rsplit("/", 1)[-1] if names else "no input"
    if len(names) > 1:
        shown += f" and {len(names) - 1:,} more"
    title_all = "\n".join(names[:50])
    partial = ('<div class="banner">The run was interrupted: this report covers only the '
               'packets read before it stopped.</div>') if run.get("partial") else ""  # fmt: skip
    return (
        '<header class="top"><div class="wrap">'
        '<div class="brand">netsift <span>capture report</span></div>'
        f'<div class="subject" title="{_esc(title_all)}">{_esc(shown)}</div>'
        f'<div class="meta">generated {_esc(run.get("generated_at", "–"))} · netsift '
        f'{_esc(tool.get("version", "?"))} · {_esc(run.get("engine", "?"))} engine · '
        f'{_esc(run.get("elapsed_s", "?"))} s</div>'
        f"</div></header>{partial}"
    )


def _summary(report: dict[str, Any]) -> str:
    cap = _dict(report.get("capture"))
    quality = _dict(report.get("quality"))
    flows = report.get("flows")
    packets = _int(cap.get("packets"))
    tiles = [
        ("packets", _num(packets), ""),
        ("bytes on the wire", _bytes(cap.get("bytes")), f"{_int(cap.get('bytes')):,} bytes"),
        ("duration", _duration(cap.get("duration_s")), f"{_float(cap.get('duration_s'))} s"),
        ("first packet (UTC)", f'<span class="tile-s">{_esc(_utc(cap.get("first_ts"), millis=False))}</span>', ""),
        ("average rate", _si(_float(cap.get("avg_bits_per_s")), "bit/s")
         if cap.get("avg_bits_per_s") is not None else "–", ""),
        ("files", _num(_int(cap.get("files"))), ""),
    ]
    if isinstance(flows, dict):
        tiles.append(("flows", _num(_int(flows.get("total"))), ""))
    verdict = str(quality.get("verdict", "unknown"))
    reasons = []
    for reason in _list(quality.get("reasons")):
        r = _dict(reason)
        level = str(r.get("level", "info"))
        reasons.append(f'<li><span class="lvl lvl-{_esc(level)}">{_esc(level)}</span> '
                       f'{_esc(_clip(str(r.get("message", ""))))} '
                       f'<code class="muted">{_esc(r.get("code", ""))}</code></li>')  # fmt: skip
    reason_html = (f'<ul class="reasons">{"".join(reasons)}</ul>' if reasons
                   else '<p class="muted">No capture defects found.</p>')  # fmt: skip
    quality_html = (
        '<div class="quality"><div class="qhead">Capture quality '
        f'<span class="verdict verdict-{_esc(verdict)}" data-verdict="{_esc(verdict)}">'
        f"{_esc(_VERDICT_TEXT.get(verdict, verdict))}</span></div>{reason_html}</div>"
    )
    findings = report.get("findings")
    if isinstance(findings, dict):
        by_sev = _dict(findings.get("by_severity"))
        chips = "".join(
            f'<a class="chip sev-{s}" href="#findings" data-sev="{s}" data-count="{_int(by_sev.get(s))}">'
            f'<b>{_int(by_sev.get(s)):,}</b> {s}</a>' for s in SEVERITIES)  # fmt: skip
        findings_html = (f'<div class="fsum"><div class="qhead">Findings <b id="findings-total">'
                         f'{_int(findings.get("total")):,}</b></div><div class="chips">{chips}</div></div>')  # fmt: skip
    else:
        findings_html = ('<div class="fsum"><div class="qhead">Findings</div><p class="muted">'
                         "The detectors did not run for this report (--no-detect).</p></div>")  # fmt: skip
    body = _tiles(tiles) + f'<div class="qf">{quality_html}{findings_html}</div>'
    return f'<section id="summary" class="card summary">{body}</section>'


# --------------------------------------------------------------------------- findings


def _value_html(value: Any, depth: int = 0) -> str:
    """Evidence and thresholds values: nested tables, capped lists, escaped text."""
    if value is None:
        return '<span class="muted">null</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        return _esc(_clip(value))
    if depth >= 6:
        return _esc(_clip(str(value)))
    if isinstance(value, list):
        if not value:
            return '<span class="muted">none</span>'
        more = (f' <span class="muted">… {len(value) - _MAX_LIST_ITEMS:,} more</span>'
                if len(value) > _MAX_LIST_ITEMS else "")  # fmt: skip
        items = value[:_MAX_LIST_ITEMS]
        if all(not isinstance(v, (dict, list)) for v in items):
            return ", ".join(_value_html(v, depth + 1) for v in items) + more
        if depth < 3 and all(isinstance(v, dict) for v in items) and not all(_flat(v) for v in items):
            # records with nested values: one small table each
            return ('<ol class="records">' + "".join(f"<li>{_kv_table(v, depth + 1)}</li>" for v in items)
                    + "</ol>" + more)  # fmt: skip
        if depth < 3 and all(isinstance(v, dict) for v in items):
            keys: list[str] = []
            for v in items:
                keys.extend(str(k) for k in v if str(k) not in keys)
            keys = keys[:12]
            head = "".join(f"<th>{_esc(k)}</th>" for k in keys)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_value_html(v.get(k), depth + 1)}</td>" for k in keys) + "</tr>"
                for v in items)  # fmt: skip
            return f'<table class="kv sub"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}'
        return ("<ul>" + "".join(f"<li>{_value_html(v, depth + 1)}</li>" for v in items)
                + "</ul>" + more)  # fmt: skip
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">none</span>'
        if depth >= 4:
            return _esc(_clip(str(value)))
        return _kv_table(value, depth + 1)
    return _esc(_clip(str(value)))


def _flat(record: dict[str, Any]) -> bool:
    """A record that fits a table row: few keys, scalar values or short lists of scalars."""
    return len(record) <= 10 and all(
        not isinstance(v, dict) and not (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))
        for v in record.values())  # fmt: skip


def _kv_table(mapping: dict[str, Any], depth: int = 0) -> str:
    items = list(mapping.items())
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_value_html(v, depth)}</td></tr>"
                   for k, v in items[:100])  # fmt: skip
    more = f'<p class="note">{len(items) - 100:,} more keys not shown.</p>' if len(items) > 100 else ""
    return f'<table class="kv"><tbody>{rows}</tbody></table>{more}'


def _hosts(values: Any, total: Any) -> str:
    hosts = [str(h) for h in _list(values)]
    text = ", ".join(_esc(h) for h in hosts[:3])
    rest = _int(total) - min(len(hosts), 3)
    if rest > 0:
        text += f' <span class="muted">+{rest:,}</span>'
    return text or '<span class="muted">–</span>'


def _finding_detail(item: dict[str, Any]) -> str:
    parts = []
    technique = item.get("technique")
    meta = [("id", _esc(item.get("id", ""))),
            ("first seen", _iso_short(item.get("first_seen"))),
            ("last seen", _iso_short(item.get("last_seen")))]  # fmt: skip
    if isinstance(technique, dict):
        meta.append(("ATT&CK", f'{_esc(technique.get("id", ""))} {_esc(technique.get("name", ""))}'))
    srcs = _list(item.get("sources"))
    dsts = _list(item.get("destinations"))
    meta.append((f"sources ({_int(item.get('sources_total')):,})",
                 _value_html(srcs) if srcs else "–"))  # fmt: skip
    meta.append((f"destinations ({_int(item.get('destinations_total')):,})",
                 _value_html(dsts) if dsts else "–"))  # fmt: skip
    parts.append('<h4>Finding</h4><table class="kv"><tbody>' + "".join(
        f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in meta) + "</tbody></table>")
    evidence = _dict(item.get("evidence"))
    thresholds = _dict(item.get("thresholds"))
    parts.append(f'<h4>Thresholds</h4>{_kv_table(thresholds) if thresholds else _empty("None.")}')
    packets = _list(item.get("packets"))
    if packets:
        lines = []
        for group in packets[:20]:
            g = _dict(group)
            frames = [str(_int(f)) for f in _list(g.get("frames"))]
            shown = ", ".join(frames[:_MAX_FRAMES])
            if len(frames) > _MAX_FRAMES:
                shown += f" … ({len(frames) - _MAX_FRAMES:,} more)"
            lines.append(f"<li><code>{_esc(g.get('file', ''))}</code>: frames {_esc(shown)}</li>")
        parts.append(f'<h4>Evidence packets ({_int(item.get("packets_total")):,} in all)</h4>'
                     f'<ul class="frames">{"".join(lines)}</ul>')  # fmt: skip
    right = f'<h4>Evidence</h4>{_kv_table(evidence) if evidence else _empty("None.")}'
    return (f'<div class="evidence"><div class="ev-side">{"".join(parts)}</div>'
            f'<div class="ev-main">{right}</div></div>')  # fmt: skip


def _findings(report: dict[str, Any]) -> str:
    findings = report.get("findings")
    if not isinstance(findings, dict):
        return ""
    items = [_dict(i) for i in _list(findings.get("items"))]
    detectors = _dict(findings.get("detectors"))
    seen = _dict(findings.get("inputs_seen"))
    notes = []
    if seen and not (seen.get("flows") and seen.get("app")):
        notes.append("Some detectors saw no input: the flows or the application layer were off "
                     "for this run, and the detectors that need them could not fire.")  # fmt: skip
    disabled = [str(d) for d in _list(findings.get("disabled"))]
    if disabled:
        notes.append("Disabled detectors: " + ", ".join(_esc(d) for d in disabled) + ".")
    ran = ", ".join(f'<span title="{_esc(_dict(v).get("title", ""))}">{_esc(k)}</span>'
                    for k, v in detectors.items())  # fmt: skip
    intro = f"Detectors that ran: {ran or 'none'}." + (" " + " ".join(notes) if notes else "")
    if not items:
        return _section("findings", "Findings", _empty("No findings: no detector fired."), intro)
    items.sort(key=lambda i: (-_SEV_RANK.get(str(i.get("severity")), 0),
                              _parse_time(i.get("first_seen")) or 0.0))  # fmt: skip
    total = len(items)
    shown = items[:MAX_FINDINGS]
    det_names = sorted({str(i.get("detector", "")) for i in items})
    sev_counts = {s: sum(1 for i in items if i.get("severity") == s) for s in SEVERITIES}
    sev_opts = "".join(f'<option value="{s}">{s} ({sev_counts[s]:,})</option>'
                       for s in SEVERITIES if sev_counts[s])  # fmt: skip
    det_opts = "".join(f'<option value="{_esc(d)}">{_esc(d)}</option>' for d in det_names)
    controls = (
        '<div class="controls">'
        '<label>Severity <select id="f-sev"><option value="">all</option>' + sev_opts + "</select></label>"
        '<label>Detector <select id="f-det"><option value="">all</option>' + det_opts + "</select></label>"
        '<label>Text <input id="f-q" type="search" placeholder="address, name, code…" autocomplete="off"></label>'
        f'<span class="muted" id="f-count">{len(shown):,} of {len(shown):,} shown</span></div>'
    )
    heads = (("Severity", "num"), ("Detector", "text"), ("Finding", "text"), ("First seen (UTC)", "num"),
             ("Sources", "text"), ("Destinations", "text"), ("Packets", "num"), ("Summary", "text"))
    head = "".join(f'<th data-type="{k}"{_NUM_CLASS if t == "Packets" else ""}>{_esc(t)}</th>'
                   for t, k in heads)  # fmt: skip
    rows = []
    for item in shown:
        sev = str(item.get("severity", "info"))
        det = str(item.get("detector", ""))
        first = _parse_time(item.get("first_seen"))
        rows.append(
            f'<tbody class="finding" data-sev="{_esc(sev)}" data-det="{_esc(det)}"><tr class="main">'
            f'<td class="nowrap" data-sort="{_SEV_RANK.get(sev, 0)}"><button type="button" class="toggle" '
            f'aria-expanded="true" title="evidence and thresholds"></button>'
            f'<span class="sev sev-{_esc(sev)}">{_esc(sev)}</span></td>'
            f'<td>{_esc(det)}</td><td class="nowrap"><code>'
            f"{_esc(item.get('code', ''))}</code></td>"
            f'<td data-sort="{first if first is not None else 0}" class="nowrap">{_iso_short(item.get("first_seen"))}</td>'
            f"<td>{_hosts(item.get('sources'), item.get('sources_total'))}</td>"
            f"<td>{_hosts(item.get('destinations'), item.get('destinations_total'))}</td>"
            f'<td class="num" data-sort="{_int(item.get("packets_total"))}">{_int(item.get("packets_total")):,}</td>'
            f'<td class="sum">{_esc(_clip(str(item.get("summary", ""))))}</td></tr>'
            f'<tr class="detail"><td colspan="{len(heads)}">{_finding_detail(item)}</td></tr></tbody>'
        )
    cap = (f'<p class="note">The {total - len(shown):,} least severe findings are not shown '
           f"(the page lists at most {MAX_FINDINGS:,}); the JSON report has them all.</p>"
           if total > len(shown) else "")  # fmt: skip
    table = (f'<div class="scroll"><table class="data sortable findings" id="findings-table">'
             f'<thead><tr>{head}</tr></thead>{"".join(rows)}</table></div>')  # fmt: skip
    intro += " Click a finding for its evidence and thresholds; click a column heading to sort."
    return _section("findings", "Findings", controls + table + cap, intro)


# --------------------------------------------------------------------------- timeline


@dataclass
class _Marker:
    ts: float
    severity: str
    text: str


def _markers(report: dict[str, Any]) -> list[_Marker]:
    out = []
    for raw in _list(_dict(report.get("findings")).get("items"))[:MAX_FINDINGS]:
        item = _dict(raw)
        ts = _parse_time(item.get("first_seen"))
        if ts is None:
            continue
        sev = str(item.get("severity", "info"))
        text = f"{sev} · {item.get('code', '')} · {_iso_short(item.get('first_seen'))}\n{item.get('summary', '')}"
        out.append(_Marker(ts, sev if sev in _SEV_COLOR else "info", _clip(text, 400)))
    out.sort(key=lambda m: _SEV_RANK.get(m.severity, 0))  # the most severe drawn last, on top
    return out


def _time_axis(start: float, span: float, left: float, width: float, y: float) -> str:
    if span <= 0:
        return ""
    fmt = "%H:%M:%S" if span <= 2 * 86400 else "%Y-%m-%d"
    if span < 10:
        fmt = "%H:%M:%S.%f"
    out = []
    ticks = 6
    for i in range(ticks + 1):
        ts = start + span * i / ticks
        x = left + width * i / ticks
        try:
            label = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime(fmt)
        except (OverflowError, OSError, ValueError):
            label = ""
        if fmt.endswith("%f"):
            label = label[:-3]
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" class="axis"/>'
                   f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{anchor}">{_esc(label)}</text>')  # fmt: skip
    return "".join(out)


def _series_svg(values: Sequence[float], start: float, interval: float, markers: Sequence[_Marker],
                label: str, colour: str, bytes_unit: bool) -> str:
    width, height = 1200, 210
    left, right, top, bottom = 78, 14, 14, 30
    pw, ph = width - left - right, height - top - bottom
    n = len(values)
    span = interval * n
    vmax = max(values, default=0.0)
    step = _nice_step(vmax or 1.0)
    ymax = step * math.ceil((vmax or 1.0) / step)
    parts = [f'<svg class="chart ts" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_esc(label)} over time">']  # fmt: skip
    # grid and y axis
    tick = 0.0
    while tick <= ymax + 1e-9:
        y = top + ph - ph * tick / ymax
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_esc(_tick_label(tick, bytes_unit))}</text>")  # fmt: skip
        tick += step
    parts.append(f'<text x="12" y="{top + ph / 2:.0f}" transform="rotate(-90 12 {top + ph / 2:.0f})" '
                 f'text-anchor="middle" class="axis-title">{_esc(label)}</text>')  # fmt: skip
    # the series as a step area
    if n:
        bw = pw / n
        base = top + ph
        d = [f"M{left:.1f},{base:.1f}"]
        for i, v in enumerate(values):
            y = base - ph * v / ymax
            d.append(f"V{y:.1f}H{left + (i + 1) * bw:.1f}")
        d.append(f"V{base:.1f}Z")
        parts.append(f'<path d="{"".join(d)}" fill="{colour}" fill-opacity="0.25" stroke="{colour}" '
                     f'stroke-width="1.2"/>')  # fmt: skip
        # an invisible hit area per bucket, for the value tooltip (bounded to 600 buckets)
        for i, v in enumerate(values):
            if v:
                tip = f"{_utc(start + i * interval)} UTC: {v:,.0f} {'bytes' if bytes_unit else 'packets'}"
                parts.append(f'<rect x="{left + i * bw:.1f}" y="{top}" width="{max(bw, 0.5):.2f}" '
                             f'height="{ph}" class="hit"><title>{_esc(tip)}</title></rect>')  # fmt: skip
    for m in markers:
        frac = (m.ts - start) / span if span > 0 else 0.0
        x = left + pw * min(max(frac, 0.0), 1.0)
        colour_m = _SEV_COLOR[m.severity]
        parts.append(f'<g class="marker" data-sev="{m.severity}"><line x1="{x:.1f}" x2="{x:.1f}" '
                     f'y1="{top}" y2="{top + ph}" stroke="{colour_m}" stroke-width="2"/>'
                     f'<path d="M{x - 5:.1f},{top - 8} h10 l-5,8 z" fill="{colour_m}"/>'
                     f"<title>{_esc(m.text)}</title></g>")  # fmt: skip
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>')
    parts.append(_time_axis(start, span, left, pw, top + ph))
    parts.append("</svg>")
    return "".join(parts)


def _timeline(report: dict[str, Any]) -> str:
    ts = _dict(report.get("timeseries"))
    packets = [_float(v) for v in _list(ts.get("packets"))]
    byts = [_float(v) for v in _list(ts.get("bytes"))]
    start = ts.get("start_ts")
    interval = _float(ts.get("interval_s"))
    if not packets or not isinstance(start, (int, float)) or interval <= 0:
        return ""
    markers = _markers(report)
    present = [s for s in SEVERITIES if any(m.severity == s for m in markers)]
    legend = ""
    if present:
        legend = '<div class="legend">Findings (first seen): ' + "".join(
            f'<span><i style="background:{_SEV_COLOR[s]}"></i>{s}</span>' for s in present) + "</div>"
    intro = (f"{len(packets):,} buckets of {_duration(interval)} from {_esc(_utc(start))} UTC. "
             "Vertical markers show when each finding was first seen (hover for its summary).")
    body = (legend + _series_svg(packets, float(start), interval, markers, "packets", _ACCENT, False)
            + _series_svg(byts, float(start), interval, markers, "bytes", _ACCENT2, True))
    return _section("timeline", "Traffic over time", body, intro)


# --------------------------------------------------------------------------- traffic sections


def _protocols(report: dict[str, Any]) -> str:
    rows = [_dict(r) for r in _list(report.get("protocols"))]
    if not rows:
        return ""
    children: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        path = str(r.get("path", ""))
        parent = path.rsplit(":", 1)[0] if ":" in path else ""
        children.setdefault(parent, []).append(r)
    ordered: list[dict[str, Any]] = []

    def walk(parent: str) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: -_int(r.get("frames"))):
            if len(ordered) >= MAX_PROTOCOL_ROWS:
                return
            ordered.append(r)
            walk(str(r.get("path", "")))

    walk("")
    if len(ordered) < min(len(rows), MAX_PROTOCOL_ROWS):  # paths whose parent is missing
        listed = {id(r) for r in ordered}
        ordered.extend(r for r in rows if id(r) not in listed)
        ordered = ordered[:MAX_PROTOCOL_ROWS]
    total = max((_int(r.get("frames")) for r in rows), default=0)
    out = []
    for r in ordered:
        depth = min(_int(r.get("depth")), 12)
        frames = _int(r.get("frames"))
        pct = _float(r.get("frames_pct"))
        width = 100.0 * frames / total if total else 0.0
        out.append(
            f'<tr title="{_esc(r.get("path", ""))}"><td class="proto" style="padding-left:{8 + depth * 18}px">'
            f'{"<span class=tree>└</span> " if depth else ""}<code>{_esc(r.get("protocol", ""))}</code></td>'
            f'<td class="bb"><div class="bar"><span style="width:{width:.2f}%;'
            f'background:{_DEPTH_COLOURS[depth % len(_DEPTH_COLOURS)]}"></span></div></td>'
            f'<td class="num">{frames:,}</td><td class="num">{pct:.2f}%</td>'
            f'<td class="num" title="{_int(r.get("bytes")):,} bytes">{_bytes(r.get("bytes"))}</td></tr>'
        )
    table = ('<table class="bars proto-tree"><thead><tr><th>Protocol</th><th>share of frames</th>'
             '<th class="num">Frames</th><th class="num">%</th><th class="num">Bytes</th></tr></thead>'
             f'<tbody>{"".join(out)}</tbody></table>')  # fmt: skip
    intro = ("Every protocol path with the frames and bytes that reached it (cumulative, like "
             "tshark -z io,phs); children are indented under their parent.")
    return _section("protocols", "Protocol hierarchy", table, intro)


_DEPTH_COLOURS = ("#1e3a8a", "#2563eb", "#3b82f6", "#60a5fa", "#93c5fd", "#bfdbfe")


def _talker_bars(rows: Any, key: str) -> list[_Bar]:
    bars = []
    for r in _list(rows)[:MAX_BARS]:
        t = _dict(r)
        value = _int(t.get(key))
        shown = _bytes(value) if key == "bytes" else _num(value)
        bars.append(_Bar(f"<code>{_esc(t.get('address', ''))}</code>", [(value, _ACCENT)], shown,
                         f"{t.get('address', '')}: {_int(t.get('packets')):,} packets, "
                         f"{_int(t.get('bytes')):,} bytes"))  # fmt: skip
    return bars


def _talkers(report: dict[str, Any]) -> str:
    tt = _dict(report.get("top_talkers"))
    by_bytes = _dict(tt.get("by_bytes"))
    by_packets = _dict(tt.get("by_packets"))
    if not any(_list(d.get(side)) for d in (by_bytes, by_packets) for side in ("sources", "destinations")):
        return ""
    distinct = _dict(tt.get("distinct"))
    panels = [
        _panel("Sources by bytes", _bar_table(_talker_bars(by_bytes.get("sources"), "bytes"), "Address", "Bytes")),
        _panel("Destinations by bytes", _bar_table(_talker_bars(by_bytes.get("destinations"), "bytes"), "Address", "Bytes")),
        _panel("Sources by packets", _bar_table(_talker_bars(by_packets.get("sources"), "packets"), "Address", "Packets")),
        _panel("Destinations by packets", _bar_table(_talker_bars(by_packets.get("destinations"), "packets"), "Address", "Packets")),
    ]  # fmt: skip
    intro = (f"{_int(distinct.get('sources')):,} distinct source and "
             f"{_int(distinct.get('destinations')):,} destination addresses.")
    if tt.get("approximate"):
        intro += (" The address table hit its cap: counts may be low by up to "
                  f"{_int(tt.get('max_error_packets')):,} packets.")  # fmt: skip
    return _section("talkers", "Top talkers", '<div class="grid2">' + "".join(panels) + "</div>", intro)


def _conversations(report: dict[str, Any]) -> str:
    conv = _dict(report.get("conversations"))
    rows = [_dict(r) for r in _list(conv.get("top_by_bytes"))]
    if not rows:
        return ""
    bars = []
    for r in rows[:MAX_BARS * 2]:
        a, b = str(r.get("address_a", "")), str(r.get("address_b", ""))
        ab, ba = _int(r.get("a_to_b_bytes")), _int(r.get("b_to_a_bytes"))
        bars.append(_Bar(
            f'<code>{_esc(a)}</code> <span class="muted">↔</span> <code>{_esc(b)}</code>',
            [(ab, _ACCENT), (ba, _ACCENT2)], _bytes(_int(r.get("bytes"))),
            f"{a} → {b}: {_int(r.get('a_to_b_packets')):,} packets, {ab:,} bytes\n"
            f"{b} → {a}: {_int(r.get('b_to_a_packets')):,} packets, {ba:,} bytes",
            [_num(_int(r.get("packets"))), _duration(r.get("duration_s"))]))
    legend = (f'<div class="legend"><span><i style="background:{_ACCENT}"></i>A → B</span>'
              f'<span><i style="background:{_ACCENT2}"></i>B → A</span></div>')  # fmt: skip
    intro = f"The largest of {_int(conv.get('distinct')):,} address pairs by bytes, both directions."
    if conv.get("approximate"):
        intro += " The pair table hit its cap: counts are approximate."
    table = _bar_table(bars, "Address A ↔ address B", "Bytes", ("Packets", "Duration"), "wide")
    return _section("conversations", "Top conversations", legend + table, intro)


def _port_bars(rows: Any) -> list[_Bar]:
    bars = []
    for r in _list(rows)[:MAX_BARS]:
        p = _dict(r)
        port = _int(p.get("port"))
        service = _SERVICES.get(port)
        label = f"<code>{port}</code>" + (f' <span class="muted">{service}</span>' if service else "")
        bars.append(_Bar(label, [(_int(p.get("packets")), _ACCENT)], _num(_int(p.get("packets"))),
                         f"port {port}: {_int(p.get('packets')):,} packets"))  # fmt: skip
    return bars


def _ports(report: dict[str, Any]) -> str:
    ports = _dict(report.get("ports"))
    panels = []
    for proto in ("tcp", "udp"):
        side = _dict(ports.get(proto))
        for key, name in (("dst", "destination"), ("src", "source")):
            rows = _list(side.get(key))
            if rows:
                panels.append(_panel(f"{proto.upper()} {name} ports", _bar_table(_port_bars(rows), "Port", "Packets"),
                                     f"{_int(side.get('distinct_' + key)):,} distinct"))  # fmt: skip
    if not panels:
        return ""
    intro = "Packets per port; the service name is the port's usual assignment, not what was seen."
    return _section("ports", "Ports", '<div class="grid2">' + "".join(panels) + "</div>", intro)


def _sizes_svg(bins: Sequence[dict[str, Any]]) -> str:
    width, height = 620, 240
    left, right, top, bottom = 60, 10, 12, 50
    pw, ph = width - left - right, height - top - bottom
    counts = [_int(b.get("packets")) for b in bins]
    total = sum(counts)
    vmax = max(counts, default=0) or 1
    step = _nice_step(vmax)
    ymax = step * math.ceil(vmax / step)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="packet sizes">']
    tick = 0.0
    while tick <= ymax + 1e-9:
        y = top + ph - ph * tick / ymax
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(_tick_label(tick))}</text>')  # fmt: skip
        tick += step
    n = len(bins) or 1
    slot = pw / n
    for i, b in enumerate(bins):
        lo, hi = _int(b.get("min")), b.get("max")
        label = f"{lo}+" if hi is None else f"{lo}–{_int(hi)}"
        h = ph * counts[i] / ymax
        x = left + i * slot
        parts.append(f'<rect x="{x + slot * 0.12:.1f}" y="{top + ph - h:.1f}" width="{slot * 0.76:.1f}" '
                     f'height="{h:.1f}" fill="{_ACCENT}"><title>{_esc(label)} bytes: {counts[i]:,} packets '
                     f"({_pct(counts[i], total)})</title></rect>"
                     f'<text x="{x + slot / 2:.1f}" y="{top + ph + 14}" text-anchor="middle" class="small">'
                     f'{lo}<tspan x="{x + slot / 2:.1f}" dy="12">{"and up" if hi is None else f"–{_int(hi)}"}'
                     "</tspan></text>")  # fmt: skip
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
                 f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis-title">'
                 "frame length (bytes on the wire)</text></svg>")  # fmt: skip
    return "".join(parts)


def _packets(report: dict[str, Any]) -> str:
    bins = [_dict(b) for b in _list(report.get("packet_sizes"))]
    flags = [_dict(f) for f in _list(report.get("tcp_flags"))]
    panels = []
    if bins:
        panels.append(_panel("Packet sizes", _sizes_svg(bins)))
    if flags:
        ranked = {str(f.get("flags", "")): _int(f.get("packets")) for f in flags}
        panels.append(_panel("TCP flag combinations", _ranked_bars(ranked, "Flags", "Packets", 20)))
    if not panels:
        return ""
    return _section("sizes", "Packet sizes and TCP flags", '<div class="grid2">' + "".join(panels) + "</div>")


def _capture(report: dict[str, Any]) -> str:
    cap = _dict(report.get("capture"))
    inputs = [_dict(i) for i in _list(report.get("inputs"))]
    rows = []
    for i in inputs[:MAX_INPUT_ROWS]:
        warnings = [_dict(w) for w in _list(i.get("warnings"))]
        warn = "; ".join(_esc(_clip(str(w.get("message", "")), 300)) for w in warnings[:3])
        status = str(i.get("status", ""))
        rows.append([
            (f"<code>{_esc(i.get('path', ''))}</code>", ""),
            (_esc(i.get("format", "")) + (" (gzip)" if i.get("compression") else ""), ""),
            (_num(_int(i.get("packets"))), str(_int(i.get("packets")))),
            (_bytes(_int(i.get("bytes"))), str(_int(i.get("bytes")))),
            (_esc(_utc(i.get("first_ts"))), str(_float(i.get("first_ts")))),
            (_duration(i.get("duration_s")), str(_float(i.get("duration_s")))),
            (f'<span class="status-{_esc(status)}">{_esc(status)}</span>' + (f"<br><small>{warn}</small>" if warn else ""), ""),
        ])  # fmt: skip
    table = _table([("File", "text"), ("Format", "text"), ("Packets", "num"), ("Bytes", "num"),
                    ("First packet (UTC)", "num"), ("Duration", "num"), ("Status", "text")], rows)  # fmt: skip
    if len(inputs) > MAX_INPUT_ROWS:
        table += f'<p class="note">{len(inputs) - MAX_INPUT_ROWS:,} more files not listed.</p>'
    skipped = [_dict(s) for s in _list(report.get("skipped_inputs"))]
    if skipped:
        table += "<h3>Skipped inputs</h3><ul>" + "".join(
            f"<li><code>{_esc(s.get('path', ''))}</code>: {_esc(s.get('reason', ''))}</li>"
            for s in skipped[:MAX_INPUT_ROWS]) + "</ul>"  # fmt: skip
    facts: dict[str, Any] = {
        "link types": ", ".join(f"{_dict(lt).get('name', '')} ({_int(_dict(lt).get('packets')):,})"
                                for lt in _list(cap.get("link_types"))) or "–",
        "snaplens": ", ".join(str(_int(s)) for s in _list(cap.get("snaplens"))) or "–",
        "IPv4 packets": _int(cap.get("ipv4_packets")),
        "IPv6 packets": _int(cap.get("ipv6_packets")),
        "IP fragments": _int(cap.get("ip_fragments")),
        "cut by the snaplen": _int(cap.get("snaplen_truncated")),
        "damaged files": _int(cap.get("damaged_files")),
        "first packet": f"{_utc(cap.get('first_ts'))} UTC",
        "last packet": f"{_utc(cap.get('last_ts'))} UTC",
    }  # fmt: skip
    quality = _dict(report.get("quality"))
    for key, label in (("duplicates", "duplicate frames"), ("out_of_order", "out-of-order timestamps")):
        facts[label] = _int(quality.get(key))
    panels = [_panel("Capture", _kv_table(facts))]
    anomalies = _dict(report.get("anomalies"))
    if anomalies:
        panels.append(_panel("Decoder anomalies", _ranked_bars(anomalies, "Anomaly", "Packets", 30)))
    frag = _dict(report.get("fragments"))
    frag_facts = {k: v for k, v in _dict(frag.get("facts")).items() if _int(v)}
    if _int(_dict(frag.get("counters")).get("fragments")) or frag_facts:
        counters = _dict(frag.get("counters"))
        body = _kv_table({"policy": frag.get("policy", "–"),
                          "fragments": _int(counters.get("fragments")),
                          "datagrams reassembled": _int(counters.get("datagrams_reassembled"))})  # fmt: skip
        if frag_facts:
            body += _ranked_bars(frag_facts, "Fragmentation fact", "Count", 20)
        panels.append(_panel("IP fragments", body))
    live = _dict(report.get("live"))
    if live:
        itf_rows = [[
            (f"<code>{_esc(i.get('name', ''))}</code>", ""),
            (_num(_int(i.get("packets"))), str(_int(i.get("packets")))),
            (_num(_int(i.get("kernel_received"))), str(_int(i.get("kernel_received")))),
            (_num(_int(i.get("kernel_dropped"))), str(_int(i.get("kernel_dropped")))),
            (_num(_int(i.get("checksum_not_ready"))), str(_int(i.get("checksum_not_ready")))),
        ] for i in (_dict(x) for x in _list(live.get("interfaces"))[:MAX_INPUT_ROWS])]  # fmt: skip
        body = _kv_table({"filter": live.get("filter") or "–", "started": live.get("started", "–"),
                          "stopped": live.get("stopped", "–"), "stop reason": live.get("stop_reason", "–"),
                          "files kept": ", ".join(str(f) for f in _list(live.get("files"))[:20]) or "none",
                          "alerts while running": _int(live.get("alerts_emitted"))})  # fmt: skip
        body += _table([("Interface", "text"), ("Packets kept", "num"), ("Kernel received", "num"),
                        ("Kernel dropped", "num"), ("Checksum offload", "num")], itf_rows)  # fmt: skip
        panels.append(_panel("Live capture", body))
    evidence = _dict(report.get("evidence"))
    if evidence:
        panels.append(_panel("Evidence captures", _kv_table({
            "directory": evidence.get("dir", "–"), "finding stubs": _int(evidence.get("findings")),
            "evidence captures": _int(evidence.get("pcaps")), "packets": _int(evidence.get("packets")),
            "frames missing": _int(evidence.get("missing"))})))  # fmt: skip
    return _section("capture", "Capture files", table + '<div class="grid2">' + "".join(panels) + "</div>")


# --------------------------------------------------------------------------- application layer


def _top_table(rows: Any, cols: Sequence[tuple[str, str, str]], limit: int = MAX_TABLE_ROWS) -> str:
    """A sortable table of dicts; cols are (key, heading, "num"|"text"|"code"|"list")."""
    items = [_dict(r) for r in _list(rows)]
    if not items:
        return _empty("None.")
    body = []
    for r in items[:limit]:
        cells = []
        for key, _, kind in cols:
            v = r.get(key)
            if kind == "num":
                cells.append((_num(v), str(_float(v))))
            elif kind == "list":
                vals = [str(x) for x in _list(v)]
                text = ", ".join(f"<code>{_esc(_clip(x, 300))}</code>" for x in vals[:10])
                if len(vals) > 10:
                    text += f' <span class="muted">+{len(vals) - 10}</span>'
                cells.append((text, ""))
            elif kind == "bool":
                cells.append(("yes" if v else "", ""))
            else:
                cells.append((f"<code>{_esc(_clip(str(v if v is not None else ''), 500))}</code>", ""))
        body.append(cells)
    headers = [(h, "num" if k == "num" else "text") for _, h, k in cols]
    more = f'<p class="note">{len(items) - limit:,} more not shown.</p>' if len(items) > limit else ""
    return _table(headers, body) + more


def _dns_tunnel_scores(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Client -> (severity, text) of the most severe dns_tunnel finding about it."""
    out: dict[str, tuple[str, str]] = {}
    for raw in _list(_dict(report.get("findings")).get("items")):
        item = _dict(raw)
        if item.get("detector") != "dns_tunnel":
            continue
        ev = _dict(item.get("evidence"))
        client = ev.get("client")
        sev = str(item.get("severity", "info"))
        if not isinstance(client, str) or sev not in _SEV_RANK:
            continue
        text = (f"{sev} dns_tunnel finding: {ev.get('registered_domain', '')} score {ev.get('score', '')}, "
                f"entropy ratio {ev.get('entropy_ratio', '–')}, encoded share {ev.get('encoded_share', '–')}")
        if client not in out or _SEV_RANK[sev] > _SEV_RANK[out[client][0]]:
            out[client] = (sev, text)
    return out


def _dns_scatter(report: dict[str, Any], clients: list[dict[str, Any]]) -> str:
    points = [c for c in clients if c.get("mean_name_length") is not None][:MAX_SCATTER_POINTS]
    if not points:
        return ""
    flagged = _dns_tunnel_scores(report)
    width, height = 620, 340
    left, right, top, bottom = 56, 16, 14, 40
    pw, ph = width - left - right, height - top - bottom
    xs = [_float(c.get("mean_name_length")) for c in points]
    # the entropy ratio where the report has it (random encodings near 1), else the longest name
    by_entropy = any(c.get("mean_entropy_ratio") is not None for c in points)
    if by_entropy:
        ys = [_float(c.get("mean_entropy_ratio")) for c in points]
    else:
        ys = [float(_int(c.get("max_name_length"))) for c in points]
    qs = [_int(c.get("queries")) for c in points]
    xstep = _nice_step(max(xs) or 1.0)
    ystep = 0.1 if by_entropy else _nice_step(max(ys) or 1.0)
    xmax = xstep * math.ceil((max(xs) or 1.0) / xstep)
    ymax = max(1.0, ystep * math.ceil(max(ys) / ystep)) if by_entropy else ystep * math.ceil((max(ys) or 1.0) / ystep)
    # entropy ratios that matter lie between 0.7 and 1: start the axis just below the lowest point
    ymin = min(0.5, ystep * math.floor(min(ys) / ystep)) if by_entropy else 0.0
    qmax = max(qs) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="DNS clients">']
    tick = ymin
    while tick <= ymax + 1e-9:
        y = top + ph - ph * (tick - ymin) / (ymax - ymin)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(tick, 6):g}</text>')  # fmt: skip
        tick += ystep
    tick = 0.0
    while tick <= xmax + 1e-9:
        x = left + pw * tick / xmax
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{tick:g}</text>')  # fmt: skip
        tick += xstep
    y_title = "mean entropy ratio of subdomains" if by_entropy else "longest query name"
    order = sorted(range(len(points)), key=lambda i: -qs[i])  # small circles on top of big ones
    labelled = set(order[:8])
    for i in order:
        c = points[i]
        client = str(c.get("client", ""))
        x = left + pw * xs[i] / xmax
        y = top + ph - ph * (ys[i] - ymin) / (ymax - ymin)
        r = 4 + 12 * math.sqrt(qs[i] / qmax)
        flag = flagged.get(client)
        colour = _SEV_COLOR[flag[0]] if flag else _ACCENT
        entropy = c.get("mean_entropy_ratio")
        tip = (f"{client}: {qs[i]:,} queries, {_int(c.get('distinct_names')):,} distinct names, "
               f"mean length {xs[i]:g}, max {_int(c.get('max_name_length'))}, "
               f"entropy ratio {'–' if entropy is None else f'{_float(entropy):g}'}, "
               f"NXDOMAIN {_int(c.get('nxdomain')):,}")
        if flag:
            tip += "\n" + flag[1]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}" fill-opacity="0.45" '
                     f'stroke="{colour}" stroke-width="1.5"><title>{_esc(tip)}</title></circle>')  # fmt: skip
        if i in labelled:
            parts.append(f'<text x="{x + r + 3:.1f}" y="{y + 4:.1f}" class="small">{_esc(client)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
                 f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis-title">'
                 "mean query name length</text>"
                 f'<text x="12" y="{top + ph / 2:.0f}" transform="rotate(-90 12 {top + ph / 2:.0f})" '
                 f'text-anchor="middle" class="axis-title">{y_title}</text></svg>')  # fmt: skip
    if by_entropy:
        note = ("One circle per client (the report's top DNS clients): mean query name length against the "
                "mean entropy ratio of the names' subdomain parts (random encodings, as tunnels and DGAs "
                "make, sit near 1; words and host names at 0.8-0.9; clients without a subdomain part of 16 "
                "characters sit at the bottom), area by query count. Clients that a dns_tunnel finding names are "
                "drawn in its severity colour.")
    else:
        note = ("One circle per client (the report's top DNS clients): mean against longest query name, "
                "area by query count (this report has no entropy figures). Clients that a dns_tunnel "
                "finding names are drawn in its severity colour, with its entropy ratio in the tooltip.")
    return _panel("Query names per client", parts[0] + "".join(parts[1:]), _esc(note))


def _dns(report: dict[str, Any]) -> str:
    dns = report.get("dns")
    if not isinstance(dns, dict) or not _int(dns.get("messages")):
        return ""
    rtt = _dict(dns.get("rtt"))
    qlen = _dict(dns.get("query_name_length"))
    tiles = [
        ("messages", _num(_int(dns.get("messages"))), ""),
        ("queries", _num(_int(dns.get("queries"))), ""),
        ("responses", _num(_int(dns.get("responses"))), ""),
        ("unanswered queries", _num(_int(dns.get("unanswered_queries"))), ""),
        ("over TCP", _num(_int(dns.get("over_tcp"))), ""),
        ("median RTT", f"{_num(rtt.get('median_ms'))} ms" if rtt else "–",
         f"p95 {rtt.get('p95_ms')} ms, max {rtt.get('max_ms')} ms" if rtt else ""),
        ("mean name length", _num(qlen.get("mean")) if qlen else "–",
         f"p50 {qlen.get('p50')}, p95 {qlen.get('p95')}, max {qlen.get('max')}" if qlen else ""),
        ("clients", _num(_int(_dict(dns.get("clients")).get("total"))), ""),
    ]
    clients = [_dict(c) for c in _list(_dict(dns.get("clients")).get("top"))]
    panels = [
        _panel("Top query names", _top_table(dns.get("top_qnames"), [("name", "Name", "code"), ("queries", "Queries", "num")])),
        _panel("Top registered domains", _top_table(dns.get("top_registered_domains"), [
            ("domain", "Domain", "code"), ("queries", "Queries", "num"), ("distinct_names", "Distinct names", "num")])),
        _panel("Query types", _ranked_bars(dns.get("by_qtype"), "Type", "Messages")),
        _panel("Response codes", _ranked_bars(dns.get("by_rcode"), "Rcode", "Responses")),
    ]  # fmt: skip
    scatter = _dns_scatter(report, clients)
    if scatter:
        panels.append(scatter)
    if clients:
        panels.append(_panel("Clients", _top_table(clients, [
            ("client", "Client", "code"), ("queries", "Queries", "num"), ("distinct_names", "Names", "num"),
            ("mean_name_length", "Mean len", "num"), ("max_name_length", "Max len", "num"),
            ("mean_entropy_ratio", "Entropy", "num"),
            ("nxdomain", "NXDOMAIN", "num")])))  # fmt: skip
    if _dict(dns.get("anomalies")):
        panels.append(_panel("DNS anomalies", _ranked_bars(dns.get("anomalies"), "Anomaly", "Messages")))
    intro = "DNS on UDP/TCP port 53, mDNS and LLMNR."
    if dns.get("approximate"):
        intro += " Some top lists hit their cap: their counts may be low."
    return _section("dns", "DNS", _tiles(tiles) + '<div class="grid2">' + "".join(panels) + "</div>", intro)


def _fingerprints(rows: Any) -> str:
    items = [_dict(r) for r in _list(rows)]
    if not items:
        return _empty("None.")
    body = []
    for r in items[:MAX_TABLE_ROWS]:
        snis = [str(s) for s in _list(r.get("example_snis"))]
        body.append([
            (f'<code title="{_esc(_clip(str(r.get("raw", "")), 1000))}">{_esc(r.get("fingerprint", ""))}</code>', ""),
            (_num(_int(r.get("hellos"))), str(_int(r.get("hellos")))),
            (_num(_int(r.get("clients"))), str(_int(r.get("clients")))),
            (", ".join(f"<code>{_esc(_clip(s, 200))}</code>" for s in snis[:5]), ""),
        ])  # fmt: skip
    more = f'<p class="note">{len(items) - MAX_TABLE_ROWS:,} more not shown.</p>' if len(items) > MAX_TABLE_ROWS else ""
    return _table([("Fingerprint", "text"), ("Hellos", "num"), ("Clients", "num"), ("Example SNIs", "text")],
                  body) + more  # fmt: skip


def _tls(report: dict[str, Any]) -> str:
    tls = report.get("tls")
    if not isinstance(tls, dict):
        return ""
    hellos = _int(tls.get("client_hellos")) + _int(tls.get("server_hellos")) + _int(tls.get("quic_client_hellos"))
    if not hellos:
        return ""
    tiles = [
        ("client hellos", _num(_int(tls.get("client_hellos"))), ""),
        ("server hellos", _num(_int(tls.get("server_hellos"))), ""),
        ("QUIC client hellos", _num(_int(tls.get("quic_client_hellos"))), ""),
        ("hellos without SNI", _num(_int(tls.get("client_hellos_without_sni"))), ""),
        ("HelloRetryRequests", _num(_int(tls.get("hello_retry_requests"))), ""),
        ("clients", _num(_int(_dict(tls.get("clients")).get("total"))), ""),
    ]
    panels = [
        _panel("Server names (SNI)", _top_table(tls.get("top_snis"), [
            ("sni", "SNI", "code"), ("hellos", "Hellos", "num"), ("clients", "Clients", "num")])),
        _panel("JA4 client fingerprints", _fingerprints(tls.get("ja4")), "Hover a fingerprint for its raw form (JA4_r)."),
        _panel("JA3 client fingerprints", _fingerprints(tls.get("ja3")), "Hover a fingerprint for the string hashed."),
        _panel("Client versions (highest offered)", _ranked_bars(tls.get("client_max_versions"), "Version", "Hellos")),
        _panel("Negotiated versions", _ranked_bars(tls.get("negotiated_versions"), "Version", "Hellos")),
        _panel("ALPN offered", _ranked_bars(tls.get("alpn"), "Protocol", "Hellos")),
        _panel("Negotiated cipher suites", _ranked_bars(tls.get("negotiated_ciphers"), "Cipher", "Hellos")),
        _panel("JA3S server fingerprints", _top_table(tls.get("ja3s"), [("fingerprint", "JA3S", "code"), ("hellos", "Hellos", "num")])),
        _panel("Top clients", _top_table(_dict(tls.get("clients")).get("top"), [
            ("client", "Client", "code"), ("hellos", "Hellos", "num"), ("snis", "SNIs", "list"), ("ja4", "JA4", "list")]),
            wide=True),
    ]  # fmt: skip
    if _dict(tls.get("anomalies")):
        panels.append(_panel("TLS anomalies", _ranked_bars(tls.get("anomalies"), "Anomaly", "Count")))
    intro = "TLS hellos on any TCP port and QUIC Initial client hellos."
    if tls.get("approximate"):
        intro += " Some top lists hit their cap: their counts may be low."
    return _section("tls", "TLS", _tiles(tiles) + '<div class="grid2">' + "".join(panels) + "</div>", intro)


def _http(report: dict[str, Any]) -> str:
    http = report.get("http")
    if not isinstance(http, dict) or not (_int(http.get("requests")) or _int(http.get("responses"))):
        return ""
    tiles = [("requests", _num(_int(http.get("requests"))), ""),
             ("responses", _num(_int(http.get("responses"))), "")]  # fmt: skip
    panels = [
        _panel("Hosts", _top_table(http.get("top_hosts"), [("host", "Host", "code"), ("requests", "Requests", "num")])),
        _panel("URIs", _top_table(http.get("top_uris"), [("uri", "URI", "code"), ("requests", "Requests", "num")])),
        _panel("User agents", _top_table(http.get("top_user_agents"), [("user_agent", "User agent", "code"), ("requests", "Requests", "num")])),
        _panel("Content types", _top_table(http.get("top_content_types"), [("content_type", "Content type", "code"), ("messages", "Messages", "num")])),
        _panel("Methods", _ranked_bars(http.get("methods"), "Method", "Requests")),
        _panel("Status codes", _ranked_bars(http.get("status_codes"), "Status", "Responses")),
        _panel("Versions", _ranked_bars(http.get("versions"), "Version", "Messages")),
    ]  # fmt: skip
    if _dict(http.get("anomalies")):
        panels.append(_panel("HTTP anomalies", _ranked_bars(http.get("anomalies"), "Anomaly", "Count")))
    intro = "HTTP/1.x request and response heads on any TCP port."
    return _section("http", "HTTP", _tiles(tiles) + '<div class="grid2">' + "".join(panels) + "</div>", intro)


# --------------------------------------------------------------------------- flows


def _flow_app(rec: dict[str, Any]) -> str:
    bits = []
    tls = _dict(rec.get("tls"))
    quic = _dict(rec.get("quic"))
    if tls.get("sni") or quic.get("sni"):
        bits.append(f"SNI <code>{_esc(_clip(str(tls.get('sni') or quic.get('sni')), 300))}</code>")
    dns = _dict(rec.get("dns"))
    if dns.get("query"):
        qtype = f" {dns.get('qtype')}" if dns.get("qtype") else ""
        rcode = f" → {dns.get('rcode')}" if dns.get("rcode") else ""
        bits.append(f"DNS <code>{_esc(_clip(str(dns.get('query')), 300))}</code>{_esc(qtype + rcode)}")
    http = _dict(rec.get("http"))
    reqs = _list(http.get("request_list"))
    if reqs:
        r = _dict(reqs[0])
        bits.append(f"{_esc(r.get('method', ''))} <code>{_esc(_clip(str(r.get('host') or ''), 300))}"
                    f"{_esc(_clip(str(r.get('uri') or ''), 300))}</code>")  # fmt: skip
        if len(reqs) > 1 or _int(http.get("requests")) > 1:
            bits.append(f'<span class="muted">{_int(http.get("requests")):,} requests</span>')
    return "<br>".join(bits)


def _endpoint(host: Any, port: Any, transport: str) -> str:
    h = str(host or "")
    shown = f"[{h}]" if ":" in h else h
    if transport in ("tcp", "udp", "sctp"):
        return f'<code class="nowrap">{_esc(shown)}:{_int(port)}</code>'
    return f'<code class="nowrap">{_esc(h)}</code>'


def _flows(report: dict[str, Any]) -> str:
    flows = report.get("flows")
    if not isinstance(flows, dict):
        return ""
    records = [_dict(r) for r in _list(flows.get("records"))]
    if not records:
        return ""
    records.sort(key=lambda r: -(_int(r.get("orig_ip_bytes")) + _int(r.get("resp_ip_bytes"))))
    shown = records[:MAX_FLOWS]
    rows = []
    for r in shown:
        transport = str(r.get("transport", ""))
        pk = _int(r.get("orig_pkts")) + _int(r.get("resp_pkts"))
        by = _int(r.get("orig_ip_bytes")) + _int(r.get("resp_ip_bytes"))
        rows.append([
            (f'<span class="nowrap">{_esc(_utc(r.get("start_ts")))}</span>', str(_float(r.get("start_ts")))),
            (_esc(transport), ""),
            (_endpoint(r.get("orig_h"), r.get("orig_p"), transport), ""),
            (_endpoint(r.get("resp_h"), r.get("resp_p"), transport), ""),
            (_esc(r.get("service") or ""), ""),
            (f'<span title="history {_esc(r.get("history", ""))}">{_esc(r.get("conn_state", ""))}</span>', ""),
            (f'<span title="{_int(r.get("orig_pkts")):,} → / {_int(r.get("resp_pkts")):,} ←">{pk:,}</span>', str(pk)),
            (f'<span title="{_int(r.get("orig_ip_bytes")):,} → / {_int(r.get("resp_ip_bytes")):,} ←">{_bytes(by)}</span>', str(by)),
            (_duration(r.get("duration_s")), str(_float(r.get("duration_s")))),
            (_flow_app(r), ""),
            (f'<code class="uid">{_esc(r.get("uid", ""))}</code>', ""),
        ])  # fmt: skip
    headers = [("Start (UTC)", "num"), ("Proto", "text"), ("Originator", "text"), ("Responder", "text"),
               ("Service", "text"), ("State", "text"), ("Packets", "num"), ("IP bytes", "num"),
               ("Duration", "num"), ("Application", "text"), ("UID", "text")]  # fmt: skip
    search = ('<div class="controls"><label>Search <input id="flow-q" type="search" '
              'placeholder="address, port, SNI, name, uid…" autocomplete="off"></label>'
              f'<span class="muted" id="flow-count">{len(shown):,} of {len(shown):,} shown</span></div>')  # fmt: skip
    total = _int(flows.get("total"))
    intro = (f"The {len(shown):,} largest of {total:,} flows by IP bytes"
             + (" (the report holds the largest only)" if not flows.get("records_complete") else "")
             + ". Type to filter; click a column heading to sort.")
    states = _dict(flows.get("by_conn_state"))
    state_bars = {f"{t} {s}": _int(n) for t, d in states.items() for s, n in _dict(d).items()}
    tcp_an = {k: _int(v) for k, v in _dict(flows.get("tcp_analysis")).items() if _int(v)}
    panels = [_panel("Flows by transport", _ranked_bars(flows.get("by_transport"), "Transport", "Flows")),
              _panel("Connection states", _ranked_bars(state_bars, "State", "Flows"))]  # fmt: skip
    if tcp_an:
        panels.append(_panel("TCP analysis", _ranked_bars(tcp_an, "Event", "Segments")))
    body = (search + _table(headers, rows, table_id="flows-table", cls="flows")
            + '<div class="grid3">' + "".join(panels) + "</div>")
    return _section("flows", "Top flows", body, intro)


# --------------------------------------------------------------------------- page


_CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{scroll-behavior:smooth;scroll-padding-top:48px}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px;overflow-wrap:anywhere}
.wrap{max-width:1440px;margin:0 auto;padding:0 20px}
header.top{background:#0f172a;color:#e2e8f0;padding:18px 0 14px}
.brand{font-size:20px;font-weight:700;letter-spacing:.02em}
.brand span{font-weight:400;color:#94a3b8}
.subject{font-size:16px;margin-top:2px;overflow-wrap:anywhere}
.meta{color:#94a3b8;font-size:12px;margin-top:4px}
nav{position:sticky;top:0;z-index:5;background:#1e293b;border-bottom:1px solid #0f172a}
nav .wrap{display:flex;flex-wrap:wrap;gap:2px}
nav a{color:#cbd5e1;text-decoration:none;padding:8px 10px;font-size:13px}
nav a:hover{color:#fff;background:#334155}
main.wrap{padding-top:16px;padding-bottom:40px}
.banner{background:#fef3c7;color:#78350f;padding:8px 20px;text-align:center;font-weight:600}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 16px}
h2{margin:0 0 6px;font-size:18px}
h3{margin:4px 0 8px;font-size:14px;color:#374151}
h4{margin:12px 0 4px;font-size:13px;color:#374151}
.lead{margin:0 0 12px;color:var(--muted)}
.note{margin:6px 0 0;color:var(--muted);font-size:12px}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.nowrap{white-space:nowrap}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(175px,1fr));gap:10px;margin-bottom:12px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:#f9fafb}
.tile-v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.tile-l{color:var(--muted);font-size:12px}
.tile-s{font-size:14px;line-height:29px;white-space:nowrap}
table.findings td.nowrap code{white-space:nowrap}
.qf{display:grid;grid-template-columns:3fr 2fr;gap:16px}
@media (max-width:900px){.qf{grid-template-columns:1fr}}
.quality,.fsum{border:1px solid var(--line);border-radius:6px;padding:10px 14px}
.qhead{font-weight:600;margin-bottom:6px}
.verdict{display:inline-block;padding:1px 10px;border-radius:10px;color:#fff;margin-left:6px;font-size:13px}
.verdict-good{background:#15803d}.verdict-degraded{background:#d97706}.verdict-poor{background:#b91c1c}
.reasons{margin:0;padding-left:18px}.reasons li{margin:3px 0}
.lvl{display:inline-block;font-size:11px;text-transform:uppercase;padding:0 6px;border-radius:3px;background:#e5e7eb}
.lvl-poor{background:#fee2e2;color:#991b1b}.lvl-degraded{background:#ffedd5;color:#9a3412}
.chips{display:flex;flex-wrap:wrap;gap:8px}
.chip{display:inline-block;padding:4px 12px;border-radius:14px;color:#fff;text-decoration:none;font-size:13px}
.chip b{font-size:15px;margin-right:2px}
.chip[data-count="0"]{opacity:.35}
.sev{display:inline-block;min-width:64px;text-align:center;padding:1px 8px;border-radius:4px;color:#fff;font-size:12px;font-weight:600}
.sev-critical{background:#7f1d1d}.sev-high{background:#dc2626}.sev-medium{background:#ea580c}
.sev-low{background:#eab308;color:#1f2937}.sev-info{background:#6b7280}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px 24px;margin-top:8px}
.grid3{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:14px 24px;margin-top:14px}
@media (max-width:640px){.grid2,.grid3{grid-template-columns:1fr}}
.panel{min-width:0}
.panel.wide{grid-column:1/-1}
.scroll{overflow-x:auto}
.scroll.tall{max-height:680px;overflow-y:auto;border-bottom:1px solid var(--line)}
table{border-collapse:collapse;width:100%}
table.data th,table.data td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
table.data thead th{background:#f9fafb;font-size:12px;color:#374151;position:sticky;top:0;white-space:nowrap}
table.data tbody tr:hover{background:#f8fafc}
th.sort{cursor:pointer;user-select:none}
th.sort::after{content:" \\2195";color:#cbd5e1}
th[aria-sort=ascending]::after{content:" \\2191";color:var(--fg)}
th[aria-sort=descending]::after{content:" \\2193";color:var(--fg)}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data th.num,table.data td.num{text-align:right}
table.bars th,table.bars td{padding:3px 6px;border-bottom:1px solid #f1f5f9;vertical-align:middle}
table.bars thead th{font-size:12px;color:var(--muted);text-align:left;font-weight:500}
table.bars thead th.num{text-align:right}
td.bl{width:50%;max-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.bars.wide td.bl{width:52%}
td.bb{width:30%}
table.bars td.bl code{font-size:12px}
.bar{display:flex;height:14px;background:#f1f5f9;border-radius:2px;overflow:hidden}
.bar span{display:block;height:100%}
table.proto-tree td.proto{white-space:nowrap;width:26%}
table.proto-tree td.bb{width:44%}
.tree{color:#9ca3af}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#374151;margin:0 0 6px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
svg.chart{display:block;width:100%;height:auto}
svg.chart text{font-size:11px;fill:#4b5563}
svg.chart text.small{font-size:10px}
svg.chart text.axis-title{font-size:11px;fill:#374151}
svg.chart .grid{stroke:#eef0f3}
svg.chart .axis{stroke:#9ca3af}
svg.chart .hit{fill:transparent}
svg.chart .hit:hover{fill:rgba(15,23,42,.06)}
svg.ts{max-height:230px;margin-bottom:6px}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:0 0 10px}
.controls label{font-size:13px;color:#374151}
.controls select,.controls input{font:inherit;padding:3px 6px;border:1px solid #d1d5db;border-radius:4px;margin-left:4px}
.controls input{width:260px}
td.sum{min-width:320px}
table.findings tbody.finding tr.main td{border-bottom:1px solid var(--line)}
table.findings tbody.finding tr.main{cursor:pointer}
table.findings tbody.finding.open tr.main{background:#f1f5f9}
table.findings tr.detail>td{padding:0 8px 10px;border-bottom:1px solid #cbd5e1}
button.toggle{display:none;border:0;background:none;padding:0 6px 0 0;color:var(--muted);font:inherit;cursor:pointer;width:18px}
.js button.toggle{display:inline-block}
button.toggle::before{content:"\\25B8"}
button.toggle[aria-expanded=true]::before{content:"\\25BE"}
.evidence{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:4px 28px;margin:6px 0 4px;padding:8px 12px;background:#f9fafb;border:1px solid var(--line);border-radius:6px;font-size:12.5px;overflow-wrap:anywhere}
@media (max-width:900px){.evidence{grid-template-columns:1fr}}
.evidence h4:first-child{margin-top:2px}
.ev-side,.ev-main{min-width:0;overflow-x:auto}
table.kv{width:auto;border-collapse:collapse}
table.kv th,table.kv td{text-align:left;vertical-align:top;padding:2px 8px 2px 0;border-bottom:1px solid #f1f5f9;font-weight:normal}
table.kv th{color:#4b5563;white-space:nowrap}
table.kv.sub thead th{font-weight:600;color:#374151}
table.kv ul{margin:0;padding-left:16px}
ul.frames{margin:0;padding-left:18px}
ol.records{margin:0;padding-left:20px}
ol.records>li{margin:0 0 6px}
table.flows td{font-size:12.5px}
.uid{color:var(--muted);white-space:nowrap}
code.nowrap{overflow-wrap:normal}
.status-damaged{color:#b91c1c;font-weight:600}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 24px}
@media print{nav,.controls{display:none}.card{break-inside:avoid-page}body{background:#fff}}
"""

# The page's only script.  It reads the page (data-* attributes, textContent) and
# never writes HTML: sorting moves rows, filters set the hidden property.
_JS = """(function () {
  "use strict";
  var body = document.body;
  function fail(err) {
    body.setAttribute("data-error", String((err && err.message) || err || "error"));
  }
  window.addEventListener("error", function (ev) { fail(ev.error || ev.message); });
  try {
    body.classList.add("js");
    // A table's units: its rows, or its row groups when each holds one item (findings).
    var grouped = function (table) { return table.classList.contains("findings"); };
    var units = function (table) {
      return Array.prototype.slice.call(grouped(table) ? table.tBodies : table.tBodies[0].rows);
    };
    var sortKey = function (unit, idx) {
      var row = unit.rows ? unit.rows[0] : unit;
      var cell = row.cells[idx];
      if (!cell) { return ""; }
      var key = cell.getAttribute("data-sort");
      return key !== null ? key : cell.textContent.trim().toLowerCase();
    };
    var sortTable = function (table, idx, th) {
      var numeric = th.getAttribute("data-type") === "num";
      var current = th.getAttribute("aria-sort");
      var dir = current ? (current === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
      Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var list = units(table).map(function (u, i) { return [sortKey(u, idx), i, u]; });
      list.sort(function (a, b) {
        var x = a[0], y = b[0];
        if (numeric) {
          x = parseFloat(x); y = parseFloat(y);
          if (isNaN(x)) { x = -Infinity; }
          if (isNaN(y)) { y = -Infinity; }
        }
        if (x < y) { return -dir; }
        if (x > y) { return dir; }
        return a[1] - b[1];
      });
      var parent = grouped(table) ? table : table.tBodies[0];
      list.forEach(function (item) { parent.appendChild(item[2]); });
    };
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, idx) {
        th.classList.add("sort");
        th.tabIndex = 0;
        var go = function () { sortTable(table, idx, th); };
        th.addEventListener("click", go);
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
        });
      });
    });
    var filterRows = function (table, keep, counter) {
      var all = units(table), shown = 0;
      all.forEach(function (r) { var ok = keep(r); r.hidden = !ok; if (ok) { shown += 1; } });
      if (counter) { counter.textContent = shown + " of " + all.length + " shown"; }
    };
    var ftable = document.getElementById("findings-table");
    if (ftable) {
      // Evidence rows start closed; a click on a finding's row opens or closes them.
      units(ftable).forEach(function (group) {
        var main = group.rows[0], detail = group.rows[1];
        var button = main.querySelector("button.toggle");
        var show = function (open) {
          detail.hidden = !open;
          group.classList.toggle("open", open);
          if (button) { button.setAttribute("aria-expanded", open ? "true" : "false"); }
        };
        show(false);
        main.addEventListener("click", function (ev) {
          if (window.getSelection && String(window.getSelection()) && ev.target !== button) { return; }
          show(detail.hidden);
        });
      });
      var fsev = document.getElementById("f-sev"), fdet = document.getElementById("f-det");
      var fq = document.getElementById("f-q"), fcount = document.getElementById("f-count");
      var applyFindings = function () {
        var sev = fsev.value, det = fdet.value, q = fq.value.trim().toLowerCase();
        filterRows(ftable, function (r) {
          return (!sev || r.getAttribute("data-sev") === sev) &&
                 (!det || r.getAttribute("data-det") === det) &&
                 (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
        }, fcount);
      };
      fsev.addEventListener("change", applyFindings);
      fdet.addEventListener("change", applyFindings);
      fq.addEventListener("input", applyFindings);
      Array.prototype.forEach.call(document.querySelectorAll("a.chip[data-sev]"), function (chip) {
        chip.addEventListener("click", function () {
          var sev = chip.getAttribute("data-sev");
          var has = Array.prototype.some.call(fsev.options, function (o) { return o.value === sev; });
          fsev.value = has ? sev : "";
          applyFindings();
        });
      });
      applyFindings();
    }
    var flowTable = document.getElementById("flows-table");
    var flowQ = document.getElementById("flow-q");
    if (flowTable && flowQ) {
      var flowCount = document.getElementById("flow-count");
      var applyFlows = function () {
        var terms = flowQ.value.trim().toLowerCase().split(/\\s+/).filter(Boolean);
        filterRows(flowTable, function (r) {
          var text = r.textContent.toLowerCase();
          return terms.every(function (t) { return text.indexOf(t) >= 0; });
        }, flowCount);
      };
      flowQ.addEventListener("input", applyFlows);
      applyFlows();
    }
    if (!body.hasAttribute("data-error")) { body.setAttribute("data-ready", "1"); }
  } catch (err) {
    fail(err);
  }
}());
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")

# No network at all: nothing may be fetched, connected to, framed or submitted.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

_NAV = (("summary", "Summary"), ("findings", "Findings"), ("timeline", "Timeline"),
        ("protocols", "Protocols"), ("talkers", "Talkers"), ("conversations", "Conversations"),
        ("ports", "Ports"), ("sizes", "Sizes"), ("dns", "DNS"), ("tls", "TLS"), ("http", "HTTP"),
        ("flows", "Flows"), ("capture", "Capture"))  # fmt: skip


def render_html(report: dict[str, Any]) -> str:
    """The report dict (``netsift.analyze(...).data``) as one self-contained HTML page.

    Sections whose data the report lacks (``flows``, ``dns``, ``tls``, ``http``,
    ``findings`` with ``--no-flows``/``--no-app``/``--no-detect``, or empty ones)
    are left out.  Every string from the capture is HTML-escaped.
    """
    sections = {
        "summary": _summary(report),
        "findings": _findings(report),
        "timeline": _timeline(report),
        "protocols": _protocols(report),
        "talkers": _talkers(report),
        "conversations": _conversations(report),
        "ports": _ports(report),
        "sizes": _packets(report),
        "dns": _dns(report),
        "tls": _tls(report),
        "http": _http(report),
        "flows": _flows(report),
        "capture": _capture(report),
    }
    nav = "".join(f'<a href="#{sid}">{label}</a>' for sid, label in _NAV if sections[sid])
    inputs = _list(report.get("inputs"))
    first = str(_dict(inputs[0]).get("path", "")) if inputs else ""
    title = "netsift report" + (f": {first.replace(chr(92), '/').rsplit('/', 1)[-1]}" if first else "")
    tool = _dict(report.get("tool"))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(CONTENT_SECURITY_POLICY)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="netsift {_esc(tool.get("version", ""))}">'
        f"<title>{_esc(_clip(title, 200))}</title><style>{_CSS}</style></head>\n"
        f'<body data-schema-version="{_esc(report.get("schema_version", ""))}">'
        + _header(report)
        + f'<nav><div class="wrap">{nav}</div></nav><main class="wrap">'
        + "\n".join(s for s in sections.values() if s)
        + "</main><footer>netsift "
        + _esc(tool.get("version", ""))
        + " · self-contained report: no network access, no external resources</footer>"
        + f"<script>{_JS}</script></body></html>\n"
    )


def write_html(report: dict[str, Any], path: str) -> None:
    """Write :func:`render_html` of ``report`` to ``path`` (atomically: never a half-written file)."""
    from .atomic import atomic_output

    data = render_html(report).encode("utf-8")
    with atomic_output(path, "the HTML report") as f:
        f.write(data)
