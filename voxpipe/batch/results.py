"""The results manifest (`OUTDIR/results.jsonl`): one JSON object per item.

Fields: id; path (the audio file, relative to OUTDIR; null on error); duration (seconds of audio);
sample_rate (Hz); seconds (wall time the synthesis took; null when recovered from a file of an
interrupted run); seed (the noise seed used); error (null, or why the item failed); fingerprint
(what the output was made from, see `item_fingerprint`).

During a run each finished item is appended and flushed at once, so an interrupted run loses no
finished item. When the run ends (also when interrupted) the file is rewritten, atomically, with
one row per item in manifest order (the last row of an id wins).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from voxpipe.core.files import write_text_atomically

RESULTS_NAME = "results.jsonl"
FIELDS = ("id", "path", "duration", "sample_rate", "seconds", "seed", "error", "fingerprint")


def make_row(item_id: str, *, path: str | None = None, duration: float | None = None,
             sample_rate: int | None = None, seconds: float | None = None, seed: int | None = None,
             error: str | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    return {"id": item_id, "path": path, "duration": duration, "sample_rate": sample_rate, "seconds": seconds,
            "seed": seed, "error": error, "fingerprint": fingerprint}


def item_fingerprint(item, pipeline_identity: str) -> str:
    """BLAKE2b of what an output depends on: text, voice, options, seed and the pipeline
    (`pipeline_identity`). A finished output whose fingerprint changed is made again on rerun."""
    data = json.dumps({"text": item.text, "voice": item.voice, "options": item.options, "seed": item.seed,
                       "pipeline": pipeline_identity}, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(data.encode("utf-8"), digest_size=16).hexdigest()


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """{id: last row} of an existing results file. Lines that are not complete JSON objects
    (the torn last line of a process killed mid-write) are skipped."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            rows[row["id"]] = row
    return rows


def dumps(row: dict[str, Any]) -> str:
    return json.dumps({key: row.get(key) for key in FIELDS}, ensure_ascii=False)


class ResultsLog:
    """Appends rows to the results file as items finish (one flushed line each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")
        if self._handle.tell() > 0 and not _ends_with_newline(path):
            self._handle.write("\n")  # a torn last line stays alone on its line (and is skipped)

    def append(self, row: dict[str, Any]) -> None:
        self._handle.write(dumps(row) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def write_results(path: Path, order: Iterable[str], rows: dict[str, dict[str, Any]]) -> None:
    """Rewrite the results file: rows of `order` (manifest ids) first, in that order, then rows
    of ids from earlier runs that are not in this manifest."""
    order = [item_id for item_id in order if item_id in rows]
    listed = set(order)
    order += [item_id for item_id in rows if item_id not in listed]
    write_text_atomically(path, "".join(dumps(rows[item_id]) + "\n" for item_id in order))
