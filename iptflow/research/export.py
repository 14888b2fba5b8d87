"""A store's courses as analysis tables: CSV, Parquet, JSON Lines, or pandas DataFrames.

Four tables (docs/export.md lists every column with its type):

* ``courses``: one row per course, its protocol and derived summary;
* ``events``: one row per stored event, its body as JSON text;
* ``measures``: one row per ``measure_recorded`` event: instrument, score, item 9;
* ``deviations``: one row per deviation the engine finds when it loads a course.

Rows are read from the store a page at a time and written as they come, so memory does not
grow with the store; a file is written beside its target and renamed over it, so a failed
export leaves nothing half-written. :func:`to_pandas` and :func:`read_table` give the same
DataFrames, with the documented dtypes, whichever way the data went (``pandas`` and, for
Parquet, ``pyarrow``: ``pip install 'iptflow[parquet]'``).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from iptflow.errors import MissingExtra
from iptflow.store.hashing import encode_event
from iptflow.store.reading import StoreReader

__all__ = ["DTYPES", "FORMATS", "TABLES", "Column", "read_table", "table_rows", "to_pandas", "write_table"]

FORMATS = ("csv", "parquet", "jsonl")
PAGE = 5000


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string, int, float, bool, timestamp
    nullable: bool = False


def _cols(*spec: str) -> tuple[Column, ...]:
    """``name:kind`` or ``name:kind?`` (nullable)."""
    out = []
    for item in spec:
        name, kind = item.split(":")
        out.append(Column(name, kind.rstrip("?"), kind.endswith("?")))
    return tuple(out)


TABLES: dict[str, tuple[Column, ...]] = {
    "courses": _cols(
        "course_id:string", "protocol_id:string", "protocol_version:string", "adaptations:string",
        "format:string", "state:string", "synthetic:bool", "created_at:timestamp",
        "updated_at:timestamp", "last_seq:int", "sessions_held:int", "outcome_status:string?",
        "deviations:int", "fingerprint:string",
    ),
    "events": _cols("course_id:string", "seq:int", "type:string", "at:timestamp", "actor:string?",
                    "body:string"),
    "measures": _cols("course_id:string", "seq:int", "at:timestamp", "instrument:string",
                      "score:float", "item9:int?"),
    "deviations": _cols("course_id:string", "seq:int", "at:timestamp", "code:string",
                        "event_type:string", "message:string"),
}

_DTYPE = {"string": "string", "int": "int64", "float": "float64", "bool": "bool",
          "timestamp": "datetime64[us, UTC]"}


def _dtype(column: Column) -> str:
    return "Int64" if column.kind == "int" and column.nullable else _DTYPE[column.kind]


DTYPES: dict[str, dict[str, str]] = {
    table: {c.name: _dtype(c) for c in columns} for table, columns in TABLES.items()
}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- rows -----------------------------------------------------------------------------------------


def table_rows(store: StoreReader, table: str) -> Iterator[dict[str, Any]]:
    """The rows of ``table`` (a key of :data:`TABLES`) as dicts of Python values, in course id
    (and seq) order, read from ``store`` a page at a time."""
    if table == "courses":
        for row in store.iter_rows(page=PAGE):
            yield {"course_id": row.id, "protocol_id": row.protocol_id,
                   "protocol_version": row.protocol_version, "adaptations": "+".join(row.adaptations),
                   "format": row.format, "state": row.state, "synthetic": row.synthetic,
                   "created_at": _when(row.created_at), "updated_at": _when(row.updated_at),
                   "last_seq": row.last_seq, "sessions_held": row.sessions_held,
                   "outcome_status": row.outcome_status, "deviations": row.deviations,
                   "fingerprint": row.fingerprint}
    elif table == "events":
        for ev in store.iter_events(page=PAGE):
            yield {"course_id": ev.course_id, "seq": ev.seq, "type": ev.type, "at": _when(ev.at),
                   "actor": ev.actor, "body": encode_event(ev.event)}
    elif table == "measures":
        for ev in store.iter_events("measure_recorded", page=PAGE):
            yield {"course_id": ev.course_id, "seq": ev.seq, "at": _when(ev.at),
                   "instrument": ev.event["instrument"], "score": float(ev.event["score"]),
                   "item9": ev.event.get("item9")}
    elif table == "deviations":
        for row in store.iter_rows(page=PAGE):
            if row.deviations:
                for d in store.get(row.id).deviations:
                    yield {"course_id": row.id, "seq": d.seq, "at": d.at.astimezone(UTC),
                           "code": d.code, "event_type": d.event_type, "message": d.message}
    else:
        raise ValueError(f"no table {table!r}: one of {', '.join(TABLES)}")


# -- files ----------------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """A value as CSV and JSON Lines write it: timestamps in RFC 3339 UTC, the rest as is."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _write_csv(rows: Iterator[dict[str, Any]], columns: tuple[Column, ...], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    n = 0
    for row in rows:
        writer.writerow(["" if row[c.name] is None else
                         ("true" if row[c.name] else "false") if c.kind == "bool" else _text(row[c.name])
                         for c in columns])
        n += 1
    return n


def _write_jsonl(rows: Iterator[dict[str, Any]], columns: tuple[Column, ...], out: IO[str]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps({c.name: _text(row[c.name]) for c in columns}, ensure_ascii=False,
                             allow_nan=False) + "\n")
        n += 1
    return n


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise MissingExtra("Parquet export", "parquet", "pyarrow") from exc
    return pyarrow


def _arrow_schema(pa: Any, columns: tuple[Column, ...]) -> Any:
    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(c.name, types[c.kind], nullable=c.nullable) for c in columns])


def _write_parquet(rows: Iterator[dict[str, Any]], columns: tuple[Column, ...], path: str) -> int:
    pa = _pyarrow()
    schema = _arrow_schema(pa, columns)
    n = 0
    with pa.parquet.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= PAGE:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n, batch = n + len(batch), []
        if batch or not n:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


def write_table(store: StoreReader, table: str, fmt: str, out: str | os.PathLike[str] | IO[str],
                progress: Callable[[int], None] | None = None) -> int:
    """Write ``table`` in ``fmt`` (csv, parquet, jsonl) to a path (written whole or not at all)
    or, for csv and jsonl, to an open text stream; return the number of rows."""
    if table not in TABLES:
        raise ValueError(f"no table {table!r}: one of {', '.join(TABLES)}")
    if fmt not in FORMATS:
        raise ValueError(f"no format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _pyarrow()  # before any work
    columns = TABLES[table]
    rows = _counted(table_rows(store, table), progress)
    if not isinstance(out, str | os.PathLike):
        if fmt == "parquet":
            raise ValueError("Parquet is written to a file, not a stream")
        return (_write_csv if fmt == "csv" else _write_jsonl)(rows, columns, out)
    target = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        if fmt == "parquet":
            os.close(fd)
            n = _write_parquet(rows, columns, tmp)
        else:
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                n = (_write_csv if fmt == "csv" else _write_jsonl)(rows, columns, handle)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return n


def _counted(rows: Iterator[dict[str, Any]],
             progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield row
        if progress is not None:
            progress(1)


# -- pandas ---------------------------------------------------------------------------------------


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise MissingExtra("DataFrames", "parquet", "pandas") from exc
    return pandas


def _frame(pd: Any, table: str, data: dict[str, list[Any]]) -> Any:
    """A DataFrame of ``table`` with the documented dtypes, from column lists of Python values
    (timestamps as datetimes or RFC 3339 text)."""
    out = {}
    for c in TABLES[table]:
        values = data[c.name]
        if c.kind == "timestamp":
            series = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
            out[c.name] = series.astype(DTYPES[table][c.name])
        else:
            out[c.name] = pd.Series(values, dtype=DTYPES[table][c.name])
    return pd.DataFrame(out, columns=[c.name for c in TABLES[table]])


def _columns(table: str, rows: Iterator[dict[str, Any]]) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {c.name: [] for c in TABLES[table]}
    for row in rows:
        for name, values in data.items():
            values.append(row[name])
    return data


def to_pandas(store: StoreReader, tables: tuple[str, ...] = tuple(TABLES)) -> dict[str, Any]:
    """The store's tables as pandas DataFrames (table name -> DataFrame), each with the dtypes
    of :data:`DTYPES` (docs/export.md)."""
    pd = _pandas()
    return {table: _frame(pd, table, _columns(table, table_rows(store, table))) for table in tables}


def _from_csv(table: str, handle: IO[str]) -> Iterator[dict[str, Any]]:
    kinds = {c.name: c for c in TABLES[table]}
    for record in csv.DictReader(handle):
        row: dict[str, Any] = {}
        for name, text in record.items():
            c = kinds[name]
            if text == "" and (c.nullable or c.kind != "string"):
                row[name] = None
            elif c.kind == "int":
                row[name] = int(text)
            elif c.kind == "float":
                row[name] = float(text)
            elif c.kind == "bool":
                row[name] = text == "true"
            else:
                row[name] = text
        yield row


def read_table(path: str | os.PathLike[str], table: str, fmt: str | None = None) -> Any:
    """A file written by :func:`write_table` (or ``iptflow export``) as a DataFrame with the
    documented dtypes; ``fmt`` defaults to the file's suffix (.csv, .parquet, .jsonl)."""
    pd = _pandas()
    fmt = fmt or Path(path).suffix.lstrip(".")
    if fmt == "parquet":
        frame = _pyarrow().parquet.read_table(path).to_pandas()
        return _frame(pd, table, {c: list(frame[c].astype(object).where(frame[c].notna(), None))
                                  for c in frame.columns})
    with open(path, encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            return _frame(pd, table, _columns(table, _from_csv(table, handle)))
        if fmt == "jsonl":
            return _frame(pd, table, _columns(table, (json.loads(line) for line in handle if line.strip())))
    raise ValueError(f"no format {fmt!r}: one of {', '.join(FORMATS)}")

