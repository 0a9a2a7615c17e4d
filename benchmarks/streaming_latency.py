#!/usr/bin/env python
"""Time to first audio and total time, streamed vs whole, for a five-sentence paragraph.

    python benchmarks/streaming_latency.py [--pipelines kokoro,tiny] [--repeats 3] [--threads 2]
                                           [--first-chunk-words N] [--json streaming_latency.json]

Pipelines (all offline): `kokoro` (the bundled default, if its package is installed), `tiny`
(the LuxTTS-style ZipVoice-Distill pipeline on the small test-fixture weights: quality is
meaningless, the timing shows the streaming overhead), `luxtts` / `luxtts-fast` / `luxtts-bf16`
(configs/luxtts.yaml at full size with random weights from benchmarks/run.py's cache: fp32 reference
kernels / fp32 fused kernels / bf16 fused kernels, what --precision auto runs on a CPU with native
bf16; the prompt is the 3.1 s fixture recording). Modes, each after one warm-up run:

  whole        `pipeline.synthesize(text)` (its own chunking and batching): the first audio is
               the whole audio;
  stream       `StreamingSession`, the whole text pushed at once, then flush();
  stream-typed the text pushed word by word at --typing-wps words per second (as an LLM or a
               typist would produce it): first audio = time until the first sentence is spoken.

--first-chunk-words N sets `settings.first_chunk_max_words` for the stream modes (the first
sentence's first chunk is at most N words, docs/streaming.md); `whole` does not use it.

Reports the median over --repeats of: time to first audio (s), total (s), audio (s), real-time
factor (total / audio), chunks, and the text of the first audio chunk. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARAGRAPH = (
    "The old lighthouse stood at the edge of the cliff. Every night, its beam swept across the dark water. "
    "Sailors trusted it to guide them safely home. One winter, a storm knocked out the power for three days. "
    "The keeper climbed the stairs with a lantern and kept the light burning."
)
PROMPT_TEXT = "He turned sharply, and faced Gregson across the table."


def build(name: str):
    """(pipeline, voice) for a pipeline name; raises if it cannot run here."""
    from voxpipe.core.pipeline import Pipeline
    from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config

    if name == "kokoro":
        pipeline = Pipeline.from_config("kokoro")
        return pipeline, pipeline.acoustic_model.voices[0]
    if name == "tiny":
        root = fixtures_root()
        pipeline = Pipeline.from_config(tiny_pipeline_config())
        voice = pipeline.encode_prompt(root / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)
        return pipeline, voice
    if name in FULL_LUXTTS:
        return build_full_luxtts(*FULL_LUXTTS[name])
    raise ValueError(f"unknown pipeline {name!r}; expected kokoro, tiny or one of {', '.join(FULL_LUXTTS)}")


# full-size LuxTTS variants: (dtype, kernels) of the acoustic model
FULL_LUXTTS = {"luxtts": ("float32", "reference"), "luxtts-fast": ("float32", "fused"),
               "luxtts-bf16": ("bfloat16", "fused")}


def build_full_luxtts(dtype: str, kernels: str):
    """configs/luxtts.yaml's family on full-size random weights (benchmarks/run.py's cache, the
    fixture's real emilia vocabulary of the same size): real shapes, meaningless sound.
    `dtype`, `kernels`: the acoustic model's arithmetic (float32/bfloat16, reference/fused)."""
    import os
    import shutil
    import tempfile

    import yaml

    sys.path.insert(0, str(REPO / "benchmarks"))
    import run as bench

    from voxpipe.core.pipeline import Pipeline
    from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config

    cache = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "voxpipe-bench"
    model = bench.prepare_model("luxtts", cache)
    tokens = fixtures_root() / "e2e" / "model" / "tokens.txt"
    if not (model.parent / "model-emilia" / "model.pt").exists():
        target = model.parent / "model-emilia"
        target.mkdir(exist_ok=True)
        for file in ("model.pt", "model.json"):
            if not (target / file).exists():
                os.symlink(model / file, target / file)
        shutil.copy(tokens, target / "tokens.txt")
    luxtts = yaml.safe_load((REPO / "configs" / "luxtts.yaml").read_text())["synthesizer"]
    family = {key: value for key, value in luxtts.items() if not isinstance(value, dict)}
    config = tiny_pipeline_config(
        acoustic_model={"type": "zipvoice-distill", "weights": str(model.parent / "model-emilia"),
                        "dtype": dtype, "kernels": kernels},
        vocoder={"type": "vocos-48k", "weights": str(bench.prepare_vocoder("vocos-48k", cache)), "freq_range": 12000,
                 "kernels": kernels, "dtype": dtype},  # the vocoder's body follows the model, as --precision does
        **family,
    )
    config["settings"] = {"trim_silence": False}
    pipeline = Pipeline.from_config(config)
    voice = pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)
    return pipeline, voice


def run_whole(pipeline, voice, text: str) -> dict:
    start = time.perf_counter()
    audio = pipeline.synthesize(text, voice, seed=0)
    total = time.perf_counter() - start
    return {"first_audio_s": total, "total_s": total, "audio_s": audio.duration, "chunks": 1}


def run_stream(pipeline, voice, text: str, words_per_second: float | None) -> dict:
    from voxpipe.streaming import StreamingSession

    session = StreamingSession(pipeline, voice, seed=0)
    start = time.perf_counter()

    def feed() -> None:
        if words_per_second is None:
            session.push_text(text)
        else:
            words = text.split(" ")
            for index, word in enumerate(words):
                session.push_text(word if index == 0 else " " + word)
                time.sleep(1.0 / words_per_second)
        session.flush()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    first, first_text, samples, chunks = None, None, 0, 0
    for chunk in session:
        if first is None and chunk.num_samples:
            first, first_text = time.perf_counter() - start, chunk.metadata.get("text")
        samples += chunk.num_samples
        chunks += 1
    total = time.perf_counter() - start
    feeder.join()
    session.close()
    return {"first_audio_s": first, "total_s": total, "audio_s": samples / pipeline.sample_rate, "chunks": chunks,
            "first_text": first_text}


def with_first_chunk_words(pipeline, words: int | None):
    """A shallow copy of `pipeline` with `settings.first_chunk_max_words` = words (validated)."""
    import copy

    from voxpipe.core.settings import PipelineSettings

    changed = copy.copy(pipeline)
    changed.settings = PipelineSettings.model_validate({**pipeline.settings.model_dump(), "first_chunk_max_words": words})
    return changed


def measure(name: str, repeats: int, typing_wps: float, first_chunk_words: int | None = None) -> list[dict]:
    whole_pipeline, voice = build(name)
    pipeline = with_first_chunk_words(whole_pipeline, first_chunk_words)
    modes = {
        "whole": lambda: run_whole(whole_pipeline, voice, PARAGRAPH),
        "stream": lambda: run_stream(pipeline, voice, PARAGRAPH, None),
        "stream-typed": lambda: run_stream(pipeline, voice, PARAGRAPH, typing_wps),
    }
    rows = []
    for mode, run in modes.items():
        run()  # warm-up (first-call allocations, espeak start-up)
        runs = [run() for _ in range(repeats)]
        row = {"pipeline": name, "mode": mode, "repeats": repeats,
               "first_chunk_max_words": None if mode == "whole" else first_chunk_words,
               "first_text": runs[0].get("first_text")}
        for key in ("first_audio_s", "total_s", "audio_s", "chunks"):
            row[key] = statistics.median(r[key] for r in runs)
        row["rtf"] = row["total_s"] / row["audio_s"]
        rows.append(row)
        print(f"  {name}/{mode}: first audio {row['first_audio_s']:.2f} s, total {row['total_s']:.2f} s", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    header = ("pipeline", "mode", "first chunk words", "first audio s", "total s", "audio s", "RTF", "chunks")
    lines = [header] + [
        (r["pipeline"], r["mode"], "-" if r["first_chunk_max_words"] is None else str(r["first_chunk_max_words"]),
         f"{r['first_audio_s']:.2f}", f"{r['total_s']:.2f}", f"{r['audio_s']:.2f}", f"{r['rtf']:.2f}", f"{r['chunks']:g}")
        for r in rows
    ]
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(line)) for line in lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--pipelines", default="kokoro,tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--typing-wps", type=float, default=4.0, help="words per second of stream-typed")
    parser.add_argument("--first-chunk-words", type=int, default=None, metavar="N",
                        help="settings.first_chunk_max_words for the stream modes (default: off)")
    parser.add_argument("--json", default="streaming_latency.json", help="where to write the results")
    args = parser.parse_args(argv)
    if args.first_chunk_words is not None and args.first_chunk_words < 1:
        parser.error(f"--first-chunk-words must be >= 1, got {args.first_chunk_words}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, skipped = [], {}
    for name in args.pipelines.split(","):
        try:
            rows += measure(name.strip(), args.repeats, args.typing_wps, args.first_chunk_words)
        except Exception as error:  # e.g. Kokoro's package missing: report, go on
            skipped[name] = f"{type(error).__name__}: {error}"
            print(f"  {name}: skipped ({skipped[name]})", file=sys.stderr)
    print(f"five-sentence paragraph ({len(PARAGRAPH)} characters), torch threads {torch.get_num_threads()}")
    print(table(rows))
    result = {
        "paragraph": PARAGRAPH, "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "machine": platform.machine(), "first_chunk_max_words": args.first_chunk_words,
        "rows": rows, "skipped": skipped,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
