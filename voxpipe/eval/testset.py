"""Test sets: what to say, and optionally whose voice it should sound like.

A test set is a JSONL file (one object per line) or a TSV file (a header row, then one row per
item) with the fields:

  id              unique name of the item (pairs items across runs in `--compare`)
  text            what the pipeline says (and the reference of WER/CER)
  category        optional tag (numbers, dates, ...) for per-category WER
  reference       optional speech of the target speaker (a sound file): speaker similarity is
                  measured against it, and cloning pipelines use it as their prompt
  reference_text  optional transcript of `reference` (the cloning prompt's text)
  voice           optional built-in voice name or a .voice file for this item

Relative paths are relative to the test-set file. Built-in sets (`BUILTIN_SETS`) ship in
`voxpipe/eval/data/`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from voxpipe.core.errors import AudioError, ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
BUILTIN_SETS = {
    "english": "60 English sentences written for voxpipe: short, long, questions, numbers, dates, "
               "abbreviations, names (no reference audio)",
    "arctic": "12 of those sentences with a real human reference clip (CMU ARCTIC a0009, free licence) "
              "for speaker similarity and as the prompt of cloning pipelines",
}
FIELDS = ("id", "text", "category", "reference", "reference_text", "voice")


@dataclass(frozen=True)
class TestItem:
    id: str
    text: str
    category: str = ""
    reference: Path | None = None
    reference_text: str | None = None
    voice: str | None = None


@dataclass(frozen=True)
class TestSet:
    name: str
    source: str
    items: tuple[TestItem, ...]

    def limited(self, count: int | None) -> TestSet:
        """The first `count` items (all when None)."""
        if count is None:
            return self
        if count <= 0:
            raise ConfigError(f"--limit {count}: expected a positive number of items")
        return TestSet(self.name, self.source, self.items[:count])

    def spread(self, count: int | None) -> TestSet:
        """`count` items spread evenly over the set (every category of a sorted set), always the
        same ones: item round(k * len / count) for k = 0 .. count - 1 (all when None)."""
        if count is None:
            return self
        if count <= 0:
            raise ConfigError(f"--sample {count}: expected a positive number of items")
        if count >= len(self.items):
            return self
        step = len(self.items) / count
        return TestSet(self.name, self.source, tuple(self.items[round(k * step)] for k in range(count)))


def load_test_set(name_or_path: str | Path) -> TestSet:
    """A built-in set by name, or a .jsonl / .tsv file. Raises ConfigError for malformed sets
    and AudioError for a reference file that does not exist."""
    text = str(name_or_path)
    if text in BUILTIN_SETS:
        path, name = DATA_DIR / f"{text}.jsonl", text
    else:
        path, name = Path(text).expanduser(), Path(text).stem
        if not path.is_file():
            raise ConfigError(f"test set {text!r} is neither a built-in set ({', '.join(BUILTIN_SETS)}) "
                              "nor an existing .jsonl/.tsv file")
    rows = _read_rows(path)
    if not rows:
        raise ConfigError(f"{path}: the test set has no items")
    items, seen = [], set()
    for number, row in rows:
        item = _make_item(row, path, number)
        if item.id in seen:
            raise ConfigError(f"{path}:{number}: id {item.id!r} appears twice; ids must be unique")
        seen.add(item.id)
        items.append(item)
    return TestSet(name=name, source=str(path), items=tuple(items))


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a .jsonl or .tsv file."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read test set {path}: {error}") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: not a JSON object: {error.msg}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append((number, row))
        return rows
    if suffix == ".tsv":
        reader = csv.DictReader(content.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or "id" not in reader.fieldnames or "text" not in reader.fieldnames:
            raise ConfigError(f"{path}: a TSV test set needs a header row with at least 'id' and 'text' "
                              f"(columns: {', '.join(FIELDS)})")
        return [(number, {k: v for k, v in row.items() if v not in (None, "")})
                for number, row in enumerate(reader, 2)]
    raise ConfigError(f"test set {path}: unknown format {suffix or '(no suffix)'!r}; expected .jsonl or .tsv")


def _make_item(row: dict, path: Path, number: int) -> TestItem:
    where = f"{path}:{number}"
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}")
    for key in ("id", "text"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ConfigError(f"{where}: {key!r} must be a non-empty string, got {row.get(key)!r}")
    for key in ("category", "reference", "reference_text", "voice"):
        if key in row and not isinstance(row[key], str):
            raise ConfigError(f"{where}: {key!r} must be a string, got {row[key]!r}")
    reference = None
    if row.get("reference"):
        reference = (path.parent / Path(row["reference"]).expanduser()).resolve()
        if not reference.is_file():
            raise AudioError(f"{where}: item {row['id']!r}: reference audio not found: {reference}")
    voice = row.get("voice")
    if voice and voice.endswith(".voice"):
        voice = str((path.parent / Path(voice).expanduser()).resolve())
    return TestItem(id=row["id"].strip(), text=row["text"].strip(), category=row.get("category", ""),
                    reference=reference, reference_text=row.get("reference_text"), voice=voice)
