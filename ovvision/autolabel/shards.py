"""Shards: the labelled images of one output folder, as JSON-lines or Parquet files.

Every shard, written by one process or by Ray, has the same flat rows (:data:`COLUMNS`):
``key`` (str, the image), ``width`` and ``height`` (int, 0 when unreadable), ``detections`` (str,
a JSON list of :func:`~ovvision.autolabel.labeller.detection_records`) and ``error`` (str, empty
for a labelled image, else why it was skipped). Keeping the detections as one JSON string makes
the two formats hold the same bytes and keeps Parquet's schema fixed for images without
detections.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
from collections.abc import Iterable
from typing import Any

from ovvision.utils.file_io import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["COLUMNS", "FORMATS", "labelled_keys", "read_shards", "shard_files", "write_shard"]

COLUMNS = ("key", "width", "height", "detections", "error")
FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}  # --format -> file suffix

Row = dict[str, Any]


def shard_files(folder: str) -> list[str]:
    """The shard files of ``folder`` (both formats), sorted by name."""
    found = []
    for suffix in FORMATS.values():
        found += glob.glob(os.path.join(glob.escape(folder), f"*{suffix}"))
    return sorted(found)


def write_shard(rows: list[Row], path: str) -> None:
    """Write ``rows`` to ``path`` (format from its suffix) atomically: a process killed while
    writing leaves no partial shard."""
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"shard rows lack the columns {missing}")
    if path.endswith(FORMATS["parquet"]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [row[c] for row in rows] for c in COLUMNS}, schema=_schema())
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
    elif path.endswith(FORMATS["jsonl"]):
        text = "".join(json.dumps({c: row[c] for c in COLUMNS}) + "\n" for row in rows)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    else:
        raise ValueError(f"shard {path}: the name must end in one of {list(FORMATS.values())}")


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("width", pa.int64()),
            ("height", pa.int64()),
            ("detections", pa.string()),
            ("error", pa.string()),
        ]
    )


def read_shards(folder: str) -> list[Row]:
    """Every row of every shard in ``folder``, shard by shard in name order.

    A shard another writer left incomplete (a JSON-lines file cut mid-line, an unreadable
    Parquet file) contributes the rows it holds in full; the rest is logged as a warning and
    those images count as not labelled.
    """
    rows: list[Row] = []
    for path in shard_files(folder):
        rows += _read_parquet(path) if path.endswith(FORMATS["parquet"]) else _read_jsonl(path)
    return rows


def _read_jsonl(path: str) -> list[Row]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                logger.warning(
                    "Shard %s: line %d is incomplete; its image is relabelled", path, number
                )
                continue
            rows.append(_checked(row, path))
    return rows


def _read_parquet(path: str) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        logger.warning("Shard %s cannot be read (%s); its images are relabelled", path, e)
        return []
    return [_checked(row, path) for row in table.to_pylist()]


def _checked(row: Row, path: str) -> Row:
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise ValueError(f"shard {path}: a row lacks the columns {missing}; is it a shard?")
    return {
        "key": str(row["key"]),
        "width": int(row["width"]),
        "height": int(row["height"]),
        "detections": str(row["detections"]),
        "error": str(row["error"] or ""),
    }


def labelled_keys(rows: Iterable[Row], retry_skipped: bool = False) -> set[str]:
    """Keys that a re-run leaves alone: every row's, or only labelled ones' with
    ``retry_skipped``."""
    return {row["key"] for row in rows if not (retry_skipped and row["error"])}
