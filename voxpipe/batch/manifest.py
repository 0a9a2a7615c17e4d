"""Reading and checking a batch manifest: JSONL, CSV or TSV rows of {id, text, voice?, options?, seed?}.

Every row is checked before any synthesis; all problems are reported at once, each with its line
number (`ManifestError`, a ConfigError: exit code 2). JSONL rows are objects (`options` an object);
CSV/TSV files have a header row naming the columns (`options` a JSON object in its cell, empty
cells mean "not given"). Voice files are relative to the manifest's directory.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxpipe.batch.options import OptionsCheck
from voxpipe.batch.seeds import MAX_SEED, item_seed
from voxpipe.batch.voices import is_voice_file, normalize_voice
from voxpipe.core.errors import ConfigError

COLUMNS = ("id", "text", "voice", "options", "seed")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
MAX_LISTED_PROBLEMS = 50


class ManifestError(ConfigError):
    """Malformed manifest rows; `problems` holds (line, message) pairs."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path, self.problems = path, problems
        listed = [f"  line {line}: {message}" for line, message in problems[:MAX_LISTED_PROBLEMS]]
        if len(problems) > MAX_LISTED_PROBLEMS:
            listed.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"manifest {path}: {len(problems)} {noun}:\n" + "\n".join(listed))


@dataclass(frozen=True)
class BatchItem:
    """One row. voice: an absolute .voice path, a built-in voice name, or None (the default).
    seed: given, else derived from the id (`item_seed`). line: where the row starts (1-based)."""

    id: str
    text: str
    voice: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "voice": self.voice, "options": dict(self.options),
                "seed": self.seed, "line": self.line}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchItem:
        return cls(**data)


def read_manifest(path: str | Path, default_voice: str | None = None,
                  check_options: OptionsCheck | None = None) -> list[BatchItem]:
    """All items of a manifest in file order, or ManifestError listing every malformed row.

    default_voice: the voice of rows without one (a .voice path relative to the current
    directory, or a name). check_options: the pipeline's options check
    (`voxpipe.batch.options.options_check`); without it options are only checked to be objects."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"manifest {path}: unknown format {path.suffix!r}; expected {', '.join(sorted(FORMATS))}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"manifest {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"manifest {path}: cannot read it as UTF-8 text ({error})") from None
    if default_voice is not None:
        default_voice = normalize_voice(default_voice, Path.cwd())
    rows = _jsonl_rows(text) if kind == "jsonl" else _table_rows(text, "," if kind == "csv" else "\t")
    items, problems, first_line_of = [], [], {}
    for line, row in rows:
        if isinstance(row, str):  # the reader's own complaint about this line
            problems.append((line, row))
            continue
        item, row_problems = _check_row(row, line, path.parent, default_voice, check_options)
        if item is not None:
            key = item.id.casefold()  # ids differing only in case collide on macOS/Windows disks
            if key in first_line_of:
                row_problems.append(f"duplicate id {item.id!r} (first on line {first_line_of[key]})")
            else:
                first_line_of[key] = line
        problems += [(line, message) for message in row_problems]
        if item is not None and not row_problems:
            items.append(item)
    if problems:
        raise ManifestError(path, problems)
    if not items:
        raise ConfigError(f"manifest {path}: no items")
    return items


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"not valid JSON ({error.msg} at column {error.colno})"
            continue
        yield number, row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"


def _table_rows(text: str, delimiter: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    header, end_of_previous = None, 0
    try:
        for cells in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                unknown = [name for name in header if name not in COLUMNS]
                if unknown or "id" not in header or "text" not in header or len(set(header)) != len(header):
                    yield start, (f"header {header}: expected distinct columns from {list(COLUMNS)}, "
                                  "including id and text")
                    return
                continue
            if len(cells) != len(header):
                yield start, f"{len(cells)} cells, but the header has {len(header)} columns"
                continue
            row = {name: cell for name, cell in zip(header, cells) if cell.strip() or name == "text"}
            if "options" in row:
                try:
                    row["options"] = json.loads(row["options"])
                except json.JSONDecodeError as error:
                    yield start, f"bad options: not a JSON object ({error.msg})"
                    continue
            if "seed" in row:
                row["seed"] = int(row["seed"]) if re.fullmatch(r"\s*\d+\s*", row["seed"]) else row["seed"]
            yield start, row
    except csv.Error as error:
        yield reader.line_num, f"unreadable row ({error})"
    if header is None:
        yield 1, f"no header row; expected columns from {list(COLUMNS)}"


def _check_row(row: dict, line: int, base_dir: Path, default_voice: str | None,
               check_options: OptionsCheck | None) -> tuple[BatchItem | None, list[str]]:
    problems = [f"unknown column {key!r} (columns: {', '.join(COLUMNS)})" for key in row if key not in COLUMNS]
    item_id = row.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if item_id is None or (isinstance(item_id, str) and not item_id.strip()):
        problems.append("missing id")
        item_id = None
    elif not isinstance(item_id, str) or not ID_PATTERN.fullmatch(item_id):
        problems.append(f"bad id {item_id!r}: expected letters, digits, '.', '_', '-' (it names the output "
                        "file), not starting with '.' or '-', at most 200 characters")
        item_id = None
    text = row.get("text")
    if text is None:
        problems.append("missing text")
    elif not isinstance(text, str):
        problems.append(f"text must be a string, got {type(text).__name__}")
    elif not text.strip():
        problems.append("empty text")
    voice = row.get("voice", default_voice)
    if voice is not None and (not isinstance(voice, str) or not voice.strip()):
        problems.append(f"bad voice {voice!r}: expected a .voice file or a voice name")
        voice = None
    elif voice is not None:
        voice = normalize_voice(voice.strip(), base_dir)
        if is_voice_file(voice) and not Path(voice).is_file():
            problems.append(f"unknown voice: file {voice} not found")
    options = row.get("options", {})
    if not isinstance(options, dict):
        problems.append(f"bad options {options!r}: expected an object of synthesis options")
        options = {}
    elif check_options is not None:
        reason = check_options(options)
        if reason:
            problems.append(f"bad options: {reason}")
    seed = row.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED):
        problems.append(f"bad seed {seed!r}: expected an integer in [0, 2**63 - 1]")
    if item_id is None:
        return None, problems
    item = BatchItem(id=item_id, text=text if isinstance(text, str) else "", voice=voice, options=options,
                     seed=item_seed(item_id) if not isinstance(seed, int) or isinstance(seed, bool) else seed,
                     line=line)
    return item, problems
