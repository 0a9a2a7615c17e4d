#!/usr/bin/env python
"""Throughput of `voxpipe batch`: items/s and audio-seconds/s against worker count, local vs Ray.

    python benchmarks/batch_throughput.py [--engines local,ray] [--workers 1,2] [--items 16]
                                          [--config PIPELINE --voice VOICE] [--steps 4] [--json out.json]

Default pipeline: the tiny offline fixture pipeline (random weights, nothing downloaded) with a
voice encoded from the fixture prompt; give --config (and --voice) to measure a real one. Every
(engine, workers) run starts from an empty output directory and uses `cpus // workers` torch
threads per worker. Reported per run:

- wall: the whole run (manifest check, worker start-up and pipeline loads, synthesis);
- items/s, audio-s/s: over the whole run;
- steady items/s, steady audio-s/s: between the first and the last finished item (start-up
  excluded: what a long run converges to); local engine only, as Ray hands finished rows to the
  driver in bursts;
- s per item in a worker: the mean of the results' `seconds` (synthesis + write of one item).

The machine's measured fp32 GEMM rate (benchmarks/run.py `matmul_gflops`) and load average are
printed with the table: wall times are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import load_average, matmul_gflops

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Batch synthesis writes one file per item.",
    "Short one.",
    "A somewhat longer sentence, with a pause in the middle, to vary the durations.",
]


class TimedEngine:
    """Wraps an engine and records when each item finished."""

    def __init__(self, engine) -> None:
        self.engine, self.finished = engine, []
        self.workers = getattr(engine, "workers", 1)

    def describe(self) -> str:
        return self.engine.describe()

    def run(self, job, items):
        for row in self.engine.run(job, items):
            self.finished.append((time.perf_counter(), row.get("duration") or 0.0))
            yield row


def prepare(directory: Path, config: str | None, voice: str | None, steps: int) -> tuple[str, str | None]:
    """(pipeline YAML path or name, voice) to benchmark."""
    if config is not None:
        return config, voice
    import yaml

    from voxpipe import Pipeline
    from voxpipe.testing.fixtures import E2E_PROMPT, E2E_PROMPT_TEXT, fixtures_root, tiny_pipeline_config

    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_pipeline_config(solver={"type": "euler", "num_steps": steps})))
    voice_path = directory / "fixture.voice"
    Pipeline.from_config(str(path)).encode_prompt(str(fixtures_root() / "e2e" / E2E_PROMPT),
                                                  E2E_PROMPT_TEXT).save(voice_path)
    return str(path), str(voice_path)


def run_one(engine_name: str, workers: int, manifest: Path, directory: Path, config: str, voice: str | None,
            threads: int) -> dict:
    from voxpipe.batch import make_engine, run_batch

    engine = TimedEngine(make_engine(engine_name, workers, threads=threads))
    output = directory / f"out-{engine_name}-{workers}"
    start = time.perf_counter()
    summary = run_batch(manifest, output, config, engine=engine, threads=threads, voice=voice)
    wall = time.perf_counter() - start
    result = {"engine": engine_name, "workers": workers, "threads": threads, "items": summary.synthesized,
              "failed": summary.failed, "audio_s": summary.audio_seconds, "wall_s": wall,
              "items_per_s": summary.synthesized / wall, "audio_s_per_s": summary.audio_seconds / wall}
    rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    result["mean_item_s"] = sum(row["seconds"] for row in rows) / len(rows)
    times = engine.finished
    if engine_name == "local" and len(times) >= 2:  # Ray hands rows to the driver in bursts
        span = times[-1][0] - times[0][0]
        result["steady_items_per_s"] = (len(times) - 1) / span
        result["steady_audio_s_per_s"] = sum(duration for _, duration in times[1:]) / span
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--config", default=None, help="pipeline YAML or bundled name (default: tiny fixture)")
    parser.add_argument("--voice", default=None, help="voice of every item (.voice file or built-in name)")
    parser.add_argument("--steps", type=int, default=4, help="solver steps of the tiny fixture pipeline")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    gflops, load = matmul_gflops(), load_average()
    print(f"machine: {cpus} CPUs, fp32 GEMM {gflops:.1f} GFLOP/s now, load average {load:.2f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="voxpipe-batch-bench-") as scratch:
        directory = Path(scratch)
        config, voice = prepare(directory, args.config, args.voice, args.steps)
        manifest = directory / "manifest.jsonl"
        manifest.write_text("".join(json.dumps({"id": f"item{i:04d}", "text": TEXTS[i % len(TEXTS)]}) + "\n"
                                    for i in range(args.items)))
        for engine_name in args.engines.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                result = run_one(engine_name, workers, manifest, directory, config, voice, max(1, cpus // workers))
                results.append(result)
                print(format_row(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"gemm_gflops": gflops, "load_average": load, "cpus": cpus,
                                               "results": results}, indent=2))
    return 0


def format_row(result: dict) -> str:
    steady = (f"steady {result['steady_items_per_s']:.2f} items/s, {result['steady_audio_s_per_s']:.2f} audio-s/s"
              if "steady_items_per_s" in result else "steady n/a")
    steady += f"; {result['mean_item_s']:.2f} s per item in a worker"
    return (f"{result['engine']:>5} x{result['workers']} ({result['threads']} thr): {result['items']} items "
            f"({result['audio_s']:.1f} s audio) in {result['wall_s']:.1f} s = {result['items_per_s']:.2f} items/s, "
            f"{result['audio_s_per_s']:.2f} audio-s/s; {steady}")


if __name__ == "__main__":
    sys.exit(main())
