"""`run_batch`: manifest -> audio files + results manifest, resumable.

    check every row (and every voice against the pipeline) -> lock OUTDIR, remove leftovers
    -> skip items whose output exists and whose fingerprint is unchanged
    -> engine (local processes or Ray actors) synthesizes the rest, each output written atomically
    -> each finished row appended to results.jsonl at once; at the end (or on Ctrl-C) the file
       is rewritten in manifest order
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxpipe.batch.manifest import BatchItem, ManifestError, read_manifest
from voxpipe.batch.options import family_class, options_check
from voxpipe.batch.outputs import DirectoryLock, output_path, remove_leftovers
from voxpipe.batch.results import RESULTS_NAME, ResultsLog, item_fingerprint, make_row, read_results, write_results
from voxpipe.batch.voices import voice_problems
from voxpipe.batch.worker import BatchJob
from voxpipe.core.errors import ConfigError


@dataclass
class BatchSummary:
    """items: in the manifest. skipped: finished by an earlier run. synthesized / failed: in this
    run. audio_seconds: of the audio made in this run. wall_seconds: of this run."""

    items: int
    skipped: int = 0
    synthesized: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    results_path: Path | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)


DEFAULT_MAX_WORKERS = 4
"""Each worker holds its own pipeline in memory; more CPUs go to threads within the workers."""


def default_workers() -> int:
    """One worker per CPU, at most `DEFAULT_MAX_WORKERS`: single-threaded workers use small CPUs
    best (two 1-thread workers made items 3-6x faster than one 2-thread worker on the busy 2-CPU
    machine of docs/batch.md), and the cap bounds the memory of the pipeline copies."""
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS))


def make_engine(name: str, workers: int | None = None, *, ray_address: str | None = None,
                gpus_per_worker: float = 0.0, threads: int | None = None):
    workers = default_workers() if workers is None else workers
    if name == "local":
        from voxpipe.batch.local import LocalEngine

        return LocalEngine(workers)
    if name == "ray":
        from voxpipe.batch.ray_engine import RayEngine

        return RayEngine(workers, address=ray_address, gpus_per_worker=gpus_per_worker,
                         cpus_per_worker=float(threads or 1))
    raise ConfigError(f"--engine {name!r}: expected 'local' or 'ray'")


def run_batch(manifest: str | Path, output_dir: str | Path, config: str | Path, *, overrides: Iterable[str] = (),
              weights_dir: str | None = None, engine=None, threads: int | None = None, voice: str | None = None,
              progress: bool = False, log=None) -> BatchSummary:
    """Synthesize every unfinished item of `manifest` into `output_dir`.

    config: pipeline YAML path or bundled name (workers get it as given). engine: a `LocalEngine`
    or `RayEngine` (default: local, `default_workers()`). threads: torch threads per worker
    (default: the CPUs divided among the workers). voice: voice of rows without one.
    log: callable for one-line notes (e.g. print to stderr).
    """
    from voxpipe.core.config import build_config
    from voxpipe.core.pipeline import Pipeline

    begin = time.perf_counter()
    if not isinstance(config, (str, Path)):
        raise ConfigError("run_batch takes the pipeline as a YAML path or bundled name (workers load it)")
    overrides = list(overrides)
    # workers (Ray actors too) may run in another directory: they get absolute paths
    config = str(Path(config).resolve()) if Path(config).is_file() else str(config)
    weights_dir = str(Path(weights_dir).expanduser().resolve()) if weights_dir else None
    resolved = build_config(config, overrides, weights_dir=weights_dir)  # config errors now, not per worker
    items = read_manifest(manifest, default_voice=voice, check_options=options_check(resolved))
    _check_voices(manifest, items, family_class(resolved),
                  lambda: Pipeline.from_config(config, overrides, weights_dir=weights_dir))
    engine = engine or make_engine("local")
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    note = log or (lambda message: None)
    with DirectoryLock(output_dir):
        leftovers = remove_leftovers(output_dir)
        if leftovers:
            note(f"removed {len(leftovers)} temporary file(s) left by an interrupted run")
        identity = resolved.to_yaml()  # the resolved pipeline, overrides applied
        fingerprints = {item.id: item_fingerprint(item, identity) for item in items}
        results_path = output_dir / RESULTS_NAME
        rows = read_results(results_path)
        todo = [item for item in items if not _finished(item, output_dir, rows, fingerprints[item.id])]
        summary = BatchSummary(items=len(items), skipped=len(items) - len(todo), results_path=results_path)
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // max(1, getattr(engine, "workers", 1)))
        job = BatchJob(config=config, output_dir=str(output_dir), overrides=overrides, weights_dir=weights_dir,
                       threads=None if getattr(engine, "workers", 1) == 0 else threads)
        note(f"{len(items)} item(s): {summary.skipped} already done, {len(todo)} to synthesize {engine.describe()}")
        log_file = ResultsLog(results_path)
        bar = _progress_bar(len(todo), progress)
        try:
            if todo:
                for row in engine.run(job, [item.to_dict() for item in todo]):
                    row["fingerprint"] = fingerprints[row["id"]]
                    log_file.append(row)
                    rows[row["id"]] = row
                    if row["error"] is None:
                        summary.synthesized += 1
                        summary.audio_seconds += row["duration"]
                    else:  # an output of earlier inputs must not pass for this item's
                        output_path(output_dir, row["id"]).unlink(missing_ok=True)
                        summary.failed += 1
                        summary.failures.append(row)
                    _advance(bar, summary, time.perf_counter() - begin)
        finally:
            bar.close()
            log_file.close()
            write_results(results_path, [item.id for item in items], rows)
            remove_leftovers(output_dir)  # of workers stopped mid-write
    summary.wall_seconds = time.perf_counter() - begin
    return summary


def _check_voices(manifest, items: list[BatchItem], family, load_pipeline) -> None:
    """Every distinct voice once against the pipeline; unknown ones reported at each row using them."""
    problems = voice_problems({item.voice for item in items if item.voice is not None}, family, load_pipeline)
    if problems:
        raise ManifestError(Path(manifest), [(item.line, problems[item.voice]) for item in items
                                             if item.voice in problems])


def _finished(item: BatchItem, output_dir: Path, rows: dict[str, dict], fingerprint: str) -> bool:
    """Done earlier: the output exists (complete: outputs are renamed into place) and was made
    from the same inputs. An output without a row (the run stopped between the rename and the
    row) is taken as done and its row rebuilt from the file."""
    path = output_path(output_dir, item.id)
    if not path.is_file():
        return False
    row = rows.get(item.id)
    if row is None:
        import soundfile

        try:
            info = soundfile.info(str(path))
        except RuntimeError:
            return False
        rows[item.id] = make_row(item.id, path=path.name, duration=info.frames / info.samplerate,
                                 sample_rate=info.samplerate, seed=item.seed, fingerprint=fingerprint)
        return True
    return row.get("error") is None and row.get("fingerprint") == fingerprint


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="item", desc="batch", disable=not enabled or total == 0, dynamic_ncols=True)


def _advance(bar, summary: BatchSummary, elapsed: float) -> None:
    """items/s and ETA come from tqdm; audio-seconds per second and failures are added."""
    postfix = f"audio {summary.audio_seconds / max(elapsed, 1e-9):.2f} s/s"
    if summary.failed:
        postfix += f", {summary.failed} failed"
    bar.set_postfix_str(postfix, refresh=False)
    bar.update(1)
