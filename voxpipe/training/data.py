"""Training data: `voxpipe data prepare` into lhotse manifests, and batches for the trainer.

Input is a TSV of `id<TAB>text<TAB>wav` rows (ZipVoice's custom-data recipe; a header line
`id text wav` is skipped) or a directory of `NAME.wav` + `NAME.txt` pairs. Each good row becomes
a lhotse Recording, a SupervisionSegment (text, and its token ids in `custom["tokens"]`) and a
MonoCut whose features (the pipeline's own `features` component, unscaled, (T, F) float32) are
stored with lhotse's feature storage. Bad rows are skipped and listed, with their id, line and
reason, in `rejected.tsv` plus one summary line: never silently.

Output directory: recordings.jsonl.gz, supervisions.jsonl.gz, cuts.jsonl.gz (what a recipe's
`data.train` names), features.lca (LilcomChunkyWriter, as ZipVoice) or features/ (numpy),
rejected.tsv.

Batches: lhotse's DynamicBucketingSampler groups cuts of similar duration up to
`max_duration` seconds; `SpeechSynthesisBatches` turns a CutSet into padded tensors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from voxpipe.core.errors import AudioError, ConfigError, TextError
from voxpipe.core.files import write_atomically, write_text_atomically

CUTS_FILE = "cuts.jsonl.gz"
RECORDINGS_FILE = "recordings.jsonl.gz"
SUPERVISIONS_FILE = "supervisions.jsonl.gz"
REJECTED_FILE = "rejected.tsv"
Storage = Literal["lilcom", "numpy"]


@dataclass
class Row:
    """One input item: id, transcript, audio path, where it came from (file:line)."""

    id: str
    text: str
    wav: Path
    where: str


@dataclass
class PrepareReport:
    total: int = 0
    kept: int = 0
    seconds: float = 0.0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (id, where, reason)

    def reject(self, row: Row, reason: str) -> None:
        self.rejected.append((row.id, row.where, reason))

    def summary(self, output: Path) -> str:
        reasons = Counter(reason.split(":")[0] for _, _, reason in self.rejected)
        detail = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
        line = f"prepared {self.kept} of {self.total} rows ({self.seconds / 3600:.3f} h of audio) into {output}"
        if self.rejected:
            line += f"; skipped {len(self.rejected)} ({detail}): see {output / REJECTED_FILE}"
        return line


# ---- reading the input ---------------------------------------------------------------------------
def read_tsv(path: str | Path) -> list[Row]:
    """`id<TAB>text<TAB>wav` rows; relative wav paths are relative to the TSV's directory.
    A malformed line is a ConfigError naming the line (it has no id to report it under)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read TSV {path}: {error}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or (number == 1 and line.split("\t")[:3] == ["id", "text", "wav"]):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ConfigError(f"{path}:{number}: expected 3 tab-separated fields (id, text, wav), got {len(fields)}")
        wav = Path(fields[2].strip()).expanduser()
        rows.append(Row(fields[0].strip(), fields[1], wav if wav.is_absolute() else path.parent / wav,
                        f"{path}:{number}"))
    if not rows:
        raise ConfigError(f"{path}: no rows (expected id<TAB>text<TAB>wav lines)")
    return rows


def read_directory(directory: str | Path) -> list[Row]:
    """Every `NAME.wav` with a `NAME.txt` transcript beside it (a wav without one is a bad row)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"not a directory: {directory}")
    rows = []
    for wav in sorted(directory.rglob("*.wav")):
        transcript = wav.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8").strip() if transcript.is_file() else None
        rows.append(Row(str(wav.relative_to(directory).with_suffix("")).replace("/", "_"),
                        "" if text is None else text, wav, str(transcript if text is not None else wav)))
        if text is None:
            rows[-1].where = f"{wav} (no {transcript.name})"
    if not rows:
        raise ConfigError(f"{directory}: no .wav files")
    return rows


# ---- preparing -----------------------------------------------------------------------------------
def out_of_vocabulary(tokenizer, text: str) -> list[str]:
    """Tokens of `text` missing from the tokenizer's vocabulary (none when it has no vocab)."""
    vocab = getattr(tokenizer, "vocab", None)
    if not vocab:
        return []
    return list(dict.fromkeys(token for token in tokenizer.tokenize(text) if token not in vocab))


def prepare(rows: list[Row], output: str | Path, *, tokenizer, features, min_seconds: float = 0.5,
            max_seconds: float = 30.0, storage: Storage = "lilcom") -> PrepareReport:
    """Check, featurize and tokenize `rows` into lhotse manifests under `output`.

    tokenizer, features: built pipeline components (`features(wave (N,)) -> (T, F)` at
    `features.sample_rate`). Returns the report (also written to rejected.tsv).
    """
    from lhotse import (
        CutSet,
        Recording,
        RecordingSet,
        SupervisionSegment,
        SupervisionSet,
    )
    from lhotse.cut import MonoCut
    from lhotse.features import Features

    from voxpipe.audio.io import load_audio

    if not 0 < min_seconds < max_seconds:
        raise ConfigError(f"need 0 < min_seconds < max_seconds, got {min_seconds} and {max_seconds}")
    output = Path(output).resolve()  # manifests name their files by absolute path
    output.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(total=len(rows))
    seen: set[str] = set()
    recordings, supervisions, cuts = [], [], []
    rate, hop = int(features.sample_rate), int(features.hop_length)
    with _writer(output, storage) as writer:
        for row in rows:
            reason = _check_row(row, seen, tokenizer)
            if reason:
                report.reject(row, reason)
                continue
            try:
                audio = load_audio(row.wav, rate, mono=getattr(features, "num_channels", 1) == 1,
                                   resampler="sinc", min_seconds=0.0)
            except AudioError as error:
                report.reject(row, f"unreadable audio: {error}")
                continue
            seconds = audio.num_samples / rate
            if not min_seconds <= seconds <= max_seconds:
                report.reject(row, f"{'too short' if seconds < min_seconds else 'too long'}: {seconds:.2f} s "
                                   f"(accepted {min_seconds}..{max_seconds} s)")
                continue
            try:
                tokens = tokenizer.encode(row.text)
            except TextError as error:
                report.reject(row, f"untokenizable text: {error}")
                continue
            if not tokens:
                report.reject(row, "empty text: no tokens")
                continue
            seen.add(row.id)
            with torch.no_grad():
                feats = features(audio.samples).to(torch.float32).numpy()
            key = writer.write(row.id, np.ascontiguousarray(feats))
            recording = Recording.from_file(row.wav.resolve(), recording_id=row.id)
            duration = recording.duration
            feature_info = Features(type=getattr(features, "name", "features"), num_frames=feats.shape[0],
                                    num_features=feats.shape[1], frame_shift=hop / rate, sampling_rate=rate,
                                    start=0.0, duration=duration, storage_type=writer.name,
                                    storage_path=str(writer.storage_path), storage_key=key, recording_id=row.id,
                                    channels=0)
            supervision = SupervisionSegment(id=row.id, recording_id=row.id, start=0.0, duration=duration,
                                             text=row.text, custom={"tokens": tokens})
            recordings.append(recording)
            supervisions.append(supervision)
            cuts.append(MonoCut(id=row.id, start=0.0, duration=duration, channel=0, recording=recording,
                                supervisions=[supervision], features=feature_info))
            report.kept += 1
            report.seconds += seconds
    _write_manifest(output / RECORDINGS_FILE, RecordingSet.from_recordings(recordings))
    _write_manifest(output / SUPERVISIONS_FILE, SupervisionSet.from_segments(supervisions))
    _write_manifest(output / CUTS_FILE, CutSet.from_cuts(cuts))
    lines = ["id\twhere\treason"] + ["\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in item)
                                     for item in report.rejected]
    write_text_atomically(output / REJECTED_FILE, "\n".join(lines) + "\n")
    return report


def _check_row(row: Row, seen: set[str], tokenizer) -> str | None:
    """The reason `row` is bad before its audio is read, or None."""
    if not row.id:
        return "empty id"
    if row.id in seen:
        return "duplicate id"
    if not row.wav.is_file():
        return f"missing file: {row.wav}"
    if not row.text.strip():
        return "empty text"
    unknown = out_of_vocabulary(tokenizer, row.text)
    if unknown:
        return "out-of-vocabulary text: " + " ".join(repr(token) for token in unknown[:10])
    return None


def _writer(output: Path, storage: Storage):
    from lhotse import LilcomChunkyWriter, NumpyFilesWriter

    if storage == "lilcom":
        return LilcomChunkyWriter(output / "features.lca", mode="w")
    if storage == "numpy":
        return NumpyFilesWriter(output / "features")
    raise ConfigError(f"unknown feature storage {storage!r}; expected lilcom or numpy")


def _write_manifest(path: Path, manifest) -> None:
    # The temporary name keeps ".jsonl" among its suffixes, which is how lhotse picks the format.
    write_atomically(path, lambda temporary: manifest.to_file(temporary))


def prepare_from_pipeline(pipeline_config, rows: list[Row], output, **options) -> PrepareReport:
    """`prepare` with the tokenizer and `synthesizer.features` built from a validated pipeline."""
    components = pipeline_config.components
    if "tokenizer" not in components:
        raise ConfigError(f"{pipeline_config.source}: data preparation needs the pipeline's tokenizer section")
    family = components["synthesizer"]
    if "features" not in family.children:
        raise ConfigError(f"{pipeline_config.source}: synthesizer {family.info.name!r} has no features section "
                          "(data preparation computes features with it)")
    tokenizer = components["tokenizer"].build("tokenizer")
    features = family.children["features"].build("synthesizer.features")
    return prepare(rows, output, tokenizer=tokenizer, features=features, **options)


# ---- batches -------------------------------------------------------------------------------------
def load_cuts(path: str | Path):
    """A CutSet written by `prepare` (ConfigError naming the file when it is not one)."""
    from lhotse import CutSet

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data manifest not found: {path} (write it with `voxpipe data prepare`)")
    try:
        cuts = CutSet.from_file(path).to_eager()
    except Exception as error:  # noqa: BLE001 - lhotse raises many kinds for a bad manifest
        raise ConfigError(f"{path}: not a lhotse CutSet manifest: {type(error).__name__}: {error}") from None
    if len(cuts) == 0:
        raise ConfigError(f"{path}: no cuts")
    for cut in cuts:
        if not cut.has_features or not cut.supervisions or "tokens" not in (cut.supervisions[0].custom or {}):
            raise ConfigError(f"{path}: cut {cut.id!r} lacks features or token ids; prepare the data with "
                              "`voxpipe data prepare`")
        break
    return cuts


def make_sampler(cuts, data, *, seed: int, rank: int = 0, world_size: int = 1):
    """lhotse's DynamicBucketingSampler over `cuts` (data: the recipe's DataSection)."""
    import warnings

    from lhotse.dataset import DynamicBucketingSampler

    with warnings.catch_warnings():
        # The manifest is read eagerly (its token ids are checked first); lhotse only warns that a
        # lazy read would save memory, which matters from millions of cuts on.
        warnings.filterwarnings("ignore", message=".*eagerly read CutSet.*")
        return DynamicBucketingSampler(cuts, max_duration=data.max_duration,
                                       num_buckets=min(data.num_buckets, len(cuts)), shuffle=data.shuffle,
                                       drop_last=data.drop_last, seed=seed, rank=rank, world_size=world_size)


class SpeechSynthesisBatches(torch.utils.data.Dataset):
    """CutSet -> {"features" (B, T, F) float32 zero-padded, "features_lens" (B,) int64,
    "tokens" list of B id lists, "ids", "seconds" (audio seconds in the batch)}."""

    def __getitem__(self, cuts) -> dict:
        loaded = [torch.from_numpy(np.asarray(cut.load_features(), dtype=np.float32)) for cut in cuts]
        lens = torch.tensor([item.shape[0] for item in loaded], dtype=torch.int64)
        features = torch.zeros(len(loaded), int(lens.max()), loaded[0].shape[1])
        for index, item in enumerate(loaded):
            features[index, : item.shape[0]] = item
        return {
            "features": features,
            "features_lens": lens,
            "tokens": [list(cut.supervisions[0].custom["tokens"]) for cut in cuts],
            "ids": [cut.id for cut in cuts],
            "seconds": float(sum(cut.duration for cut in cuts)),
        }


class SkippingSampler:
    """Wraps a lhotse sampler: the first pass of an epoch skips `skip` batches (a resumed run
    picks up exactly where its checkpoint was). Skipping walks only cut metadata."""

    def __init__(self, sampler, skip: int = 0) -> None:
        self.sampler, self.skip = sampler, skip

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        iterator = iter(self.sampler)
        for _ in range(self.skip):
            if next(iterator, None) is None:
                break
        self.skip = 0
        # Not `yield from`: it would call iter() again, and a lhotse sampler restarts its epoch then.
        while (batch := next(iterator, None)) is not None:
            yield batch


def make_loader(cuts, data, *, seed: int, epoch: int, skip: int, rank: int = 0, world_size: int = 1):
    """A DataLoader yielding the batches of `epoch`, after skipping `skip` of them."""
    sampler = SkippingSampler(make_sampler(cuts, data, seed=seed, rank=rank, world_size=world_size), skip)
    sampler.set_epoch(epoch)
    # Its own generator: creating a loader draws a worker seed, which must not move the global
    # torch RNG (a resumed run creates its loader at another point than an uninterrupted one).
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 1_009 + rank)
    return torch.utils.data.DataLoader(SpeechSynthesisBatches(), sampler=sampler, batch_size=None,
                                       num_workers=data.num_workers, persistent_workers=False, generator=generator)


def rows_from(tsv: str | None, directory: str | None) -> list[Row]:
    if (tsv is None) == (directory is None):
        raise ConfigError("give exactly one of --tsv FILE or --dir DIRECTORY")
    return read_tsv(tsv) if tsv else read_directory(directory)

