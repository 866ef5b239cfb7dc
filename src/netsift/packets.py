"""``netsift packets``: chosen fields of every packet matching a filter, streamed to CSV, NDJSON or Parquet.

Like ``tshark -T fields -e ...``, but columnar: each batch of records is
decoded (:func:`netsift.decode_fast.decode`), filtered with a numpy mask
(:mod:`netsift.pfilter`), its fields extracted (:mod:`netsift.pfields`) and
written before the next batch is read, so memory is bounded by the batch
size.  A file output appears under its name only when the run completes.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np

from .atomic import AtomicFile
from .capture import CaptureReader
from .errors import UsageError
from .flow_export import output_format
from .papp import AppFields, needs_app
from .pfields import ALIASES, FIELDS, PROTOCOLS, Field, Mask, Values, render_json, render_text
from .pfilter import PacketFilter


def parse_fields(spec: str) -> list[Field]:
    """``--fields a,b,c`` → registry fields, or a :class:`UsageError` with close matches."""
    import difflib

    names = [n.strip() for n in spec.split(",")]
    if not any(names):
        raise UsageError("--fields: name at least one field (see `netsift packets --help`)")
    out = []
    for name in names:
        if not name:
            raise UsageError(f"--fields: empty name in {spec!r}")
        if name not in FIELDS:
            if name in ALIASES or name in PROTOCOLS:
                raise UsageError(
                    f"--fields: {name!r} can be used in --filter only; it is not one field"
                )
            close = difflib.get_close_matches(name, sorted(FIELDS), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"--fields: unknown field {name!r}{hint}")
        out.append(FIELDS[name])
    return out


Columns = list[tuple[Values, Mask]]


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _csv_quote(cell: str) -> str:
    if _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


class _TextSink:
    def __init__(self, stream: IO[str], fields: list[Field], fmt: str) -> None:
        self.stream = stream
        self.fields = fields
        self.fmt = fmt
        if fmt == "csv":
            stream.write(",".join(f.name for f in fields) + "\n")
        self._keys = [json.dumps(f.name) + ":" for f in fields]

    def write(self, columns: Columns) -> None:
        if self.fmt == "csv":
            cells = []
            for f, (values, present) in zip(self.fields, columns, strict=True):
                col = render_text(f, values, present)
                cells.append([_csv_quote(c) if c else c for c in col] if f.kind == "str" else col)
            lines: Iterable[str] = map(",".join, zip(*cells, strict=True))
        else:
            parts = []
            for key, f, (values, present) in zip(self._keys, self.fields, columns, strict=True):
                dumps = json.dumps
                if f.kind in ("int", "hex"):
                    vals = render_json(f, values, present)
                    parts.append([key + ("null" if v is None else str(v)) for v in vals])
                else:
                    parts.append([key + dumps(v) for v in render_json(f, values, present)])
            lines = ("{" + ",".join(row) + "}" for row in zip(*parts, strict=True))
        self.stream.write("".join(line + "\n" for line in lines))

    def finish(self) -> None:
        self.stream.flush()


class _ParquetSink:
    def __init__(self, raw: IO[bytes], fields: list[Field]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.fields = fields
        types = {"int": pa.int64(), "hex": pa.int64(), "bool": pa.bool_(),
                 "time": pa.float64(), "ip": pa.string(), "str": pa.string()}  # fmt: skip
        self.schema = pa.schema([pa.field(f.name, types[f.kind]) for f in fields])
        self.writer = pq.ParquetWriter(raw, self.schema, compression="zstd")

    def write(self, columns: Columns) -> None:
        pa = self.pa
        arrays = []
        for f, (values, present), t in zip(self.fields, columns, self.schema.types, strict=True):
            if f.kind in ("int", "hex", "bool"):
                arr = np.asarray(values).astype(np.bool_ if f.kind == "bool" else np.int64)
                arrays.append(pa.array(arr, type=t, mask=~present))
            elif f.kind == "time":
                secs = np.asarray(values, dtype=np.int64) / 1e9
                arrays.append(pa.array(secs, type=t, mask=~present))
            else:
                arrays.append(pa.array(render_json(f, values, present), type=t))
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def finish(self) -> None:
        self.writer.close()


class PacketSink:
    """Where selected packets go: ``path`` by its extension (atomically), or CSV on ``stdout``."""

    def __init__(
        self, path: str | None, fields: list[Field], stdout: IO[str] | None = None
    ) -> None:
        self.path = path
        self.fields = fields
        self.rows = 0
        self.file: AtomicFile | None = None
        self._text: io.TextIOWrapper | None = None
        if path is None:
            assert stdout is not None
            self.format = "csv"
            self.sink: _TextSink | _ParquetSink = _TextSink(stdout, fields, "csv")
            return
        self.format = output_format(path, "-o")
        self.file = AtomicFile(path, "the packets", prefix=".netsift-packets-")
        try:
            if self.format == "parquet":
                self.sink = _ParquetSink(self.file.raw, fields)
            else:
                self._text = io.TextIOWrapper(self.file.raw, encoding="utf-8", newline="")
                self.sink = _TextSink(self._text, fields, self.format)
        except OSError as exc:
            raise self.file.error(exc) from None
        except BaseException:
            self.file.abort()
            raise

    def write(self, columns: Columns) -> None:
        if not columns or len(columns[0][1]) == 0:
            return
        try:
            self.sink.write(columns)
        except OSError as exc:
            if self.file is None:
                raise
            raise self.file.error(exc) from None
        self.rows += len(columns[0][1])

    def close(self) -> None:
        try:
            self.sink.finish()
            if self._text is not None:
                self._text.flush()
                self._text.detach()
        except OSError as exc:
            if self.file is None:
                raise
            raise self.file.error(exc) from None
        if self.file is not None:
            self.file.commit()

    def abort(self) -> None:
        if self.file is not None:
            self.file.abort()


def select(fields: list[Field], cols: Any, batch: Any, mask: Mask | None) -> Columns:
    """The ``(values, present)`` of each field for the packets ``mask`` keeps."""
    out: Columns = []
    keep = None if mask is None else np.nonzero(mask)[0]
    for f in fields:
        values, present = f.extract(cols, batch)
        if keep is not None:
            if isinstance(values, list):
                values = [values[i] for i in keep.tolist()]
            else:
                values = np.asarray(values)[keep]
            present = present[keep]
        out.append((values, present))
    return out


def run(
    files: Iterable[str],
    fields: list[Field],
    packet_filter: PacketFilter | None,
    sink: PacketSink,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Stream the selected fields of the matching packets of ``files`` into ``sink``; return the count.

    On any exception (Ctrl-C included) the sink's temporary file is removed.
    """
    from .decode_fast import decode

    app = None
    if needs_app([f.name for f in fields], packet_filter.text if packet_filter is not None else None):
        app = AppFields()
    try:
        for index, path in enumerate(files):
            reader = CaptureReader(path, file_index=index)
            with reader:
                for batch in reader.batches():
                    cols = decode(batch)
                    if app is not None:
                        app.read(cols, batch)
                    mask = None
                    if packet_filter is not None:
                        mask = packet_filter.mask(cols, batch)
                        if not mask.any():
                            continue
                    sink.write(select(fields, cols, batch, mask))
            if warn is not None:
                for w in reader.warnings:
                    warn(f"{path}: {w.message}")
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        if app is not None:
            app.close()
    return sink.rows
