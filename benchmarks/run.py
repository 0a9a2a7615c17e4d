#!/usr/bin/env python
"""Speed benchmark of full-size voxpipe pipelines on CPU (random weights, nothing downloaded).

    python benchmarks/run.py [--configs luxtts,zipvoice_distill,zipvoice] [--backends torch,onnx]
                             [--precisions fp32,int8,bf16] [--threads 2] [--json out.json]

Scenario: a 3 s prompt + 7 s generated = 10 s of audio (938 frames of 24 kHz / hop 256).
Each (config, backend, precision) runs in its own process (clean peak RSS, its own thread
setting) and reports per stage: front-end (prompt mel), text encoder (`condition()`), each solver
step, vocoder, total; wall and CPU seconds; real-time factor over the 10 s of audio and over the
7 s generated; peak RSS. Models are built once from the official configs with seeded random
weights and cached (with their ONNX exports) under --cache.

Precisions: fp32 everywhere; int8 = onnxruntime dynamic int8 graphs (onnx backend only);
bf16 = the torch model with `dtype: bfloat16` (weights and activations; the Swoosh activations
still evaluate in float32), torch backend only. Unsupported pairs are
skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_RATE, HOP = 24000, 256
PROMPT_SECONDS, TOTAL_FRAMES = 3.0, 938
VOCAB_SIZE = 360

# Official ZipVoice model.json (k2-fsa/ZipVoice zipvoice/ and zipvoice_distill/; LuxTTS config.json
# has the same "model" object). Equal to the defaults of voxpipe.plugins.zipvoice.model.ZipVoice.
ZIPVOICE_MODEL = {
    "fm_decoder_downsampling_factor": [1, 2, 4, 2, 1],
    "fm_decoder_num_layers": [2, 2, 4, 4, 4],
    "fm_decoder_cnn_module_kernel": [31, 15, 7, 15, 31],
    "fm_decoder_feedforward_dim": 1536,
    "fm_decoder_num_heads": 4,
    "fm_decoder_dim": 512,
    "text_encoder_num_layers": 4,
    "text_encoder_feedforward_dim": 512,
    "text_encoder_cnn_module_kernel": 9,
    "text_encoder_num_heads": 4,
    "text_encoder_dim": 192,
    "query_head_dim": 32,
    "value_head_dim": 12,
    "pos_head_dim": 4,
    "pos_dim": 48,
    "time_embed_dim": 192,
    "text_embed_dim": 192,
    "feat_dim": 100,
}
MEL = {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}
# charactr/vocos-mel-24khz.
VOCOS_24K = {
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures", "init_args": MEL},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "center"}},
}
# LuxTTS vocoder/config.yaml: the 24 kHz Vocos above + upsampler + 48 kHz head (schema of the
# fixture tests/fixtures/vocoders/luxtts_vocoder, widths of the published model).
VOCOS_48K = {
    **VOCOS_24K,
    "upsampler": {"class_path": "linacodec.vocoder.upsampler_block.UpSamplerBlock",
                  "init_args": {"in_channels": 512, "upsample_factors": [2, 2], "kernel_sizes": [4, 8]}},
    "head_48k": {"class_path": "vocos.heads.ISTFTHead",
                 "init_args": {"dim": 512, "n_fft": 512, "hop_length": 128, "padding": "same"}},
}

# Pipeline settings of configs/<name>.yaml and the official timings on this CPU (2 threads,
# /work/shared/PERF.md): seconds per 10 s of audio.
CONFIGS = {
    "luxtts": dict(variant="zipvoice-distill", guidance=("distilled", 3.0), steps=4, vocoder="vocos-48k",
                   official={"acoustic": 6.0, "vocoder": 0.3}),
    "zipvoice_distill": dict(variant="zipvoice-distill", guidance=("distilled", 3.0), steps=8, vocoder="vocos-24k",
                             official={"acoustic": 10.8, "vocoder": 0.2}),
    "zipvoice": dict(variant="zipvoice", guidance=("classifier-free", 1.0), steps=16, vocoder="vocos-24k",
                     official={"acoustic": 44.0, "vocoder": 0.2}),
}
SUPPORTED = {("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx", "int8")}


# ---- model preparation (cached) ---------------------------------------------------------------
def prepare_model(name: str, cache: Path) -> Path:
    """Full-size random-weight model directory in the official layout."""
    import torch

    from voxpipe.plugins.zipvoice.loading import network_class

    spec = CONFIGS[name]
    directory = cache / spec["variant"] / "model"
    if (directory / "model.pt").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = network_class(spec["variant"])(**ZIPVOICE_MODEL, vocab_size=VOCAB_SIZE, pad_id=0)
    torch.save({"model": model.state_dict()}, directory / "model.pt.tmp")
    (directory / "model.json").write_text(json.dumps({"model": ZIPVOICE_MODEL, "feature": {
        "sampling_rate": SAMPLE_RATE, "type": "vocos"}}))
    tokens = ["_"] + [f"t{i}" for i in range(1, VOCAB_SIZE)]
    (directory / "tokens.txt").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)))
    os.replace(directory / "model.pt.tmp", directory / "model.pt")
    return directory


def prepare_vocoder(kind: str, cache: Path) -> Path:
    import torch
    import yaml

    from voxpipe.plugins.vocos.config import parse_sections
    from voxpipe.plugins.vocos.modules import VocosModel
    from voxpipe.plugins.vocos.upsampler import DualHeadVocosModel

    directory = cache / kind
    checkpoint = directory / ("vocos.bin" if kind == "vocos-48k" else "pytorch_model.bin")
    if checkpoint.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    config = VOCOS_48K if kind == "vocos-48k" else VOCOS_24K
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    sections = tuple(config)
    specs = parse_sections(directory / "config.yaml", sections)
    torch.manual_seed(1)
    model = (DualHeadVocosModel if kind == "vocos-48k" else VocosModel)(*(specs[s] for s in sections))
    torch.save(model.state_dict(), str(checkpoint) + ".tmp")
    os.replace(str(checkpoint) + ".tmp", checkpoint)
    return directory


def prepare_onnx(name: str, cache: Path) -> Path:
    from voxpipe.export.onnx import export_acoustic_model
    from voxpipe.registry import get_registry

    spec = CONFIGS[name]
    directory = cache / spec["variant"] / "onnx"
    if (directory / "fm_decoder_int8.onnx").is_file():
        return directory
    model_dir = prepare_model(name, cache)
    component = get_registry().get("acoustic_model", spec["variant"]).cls(weights=str(model_dir))
    export_acoustic_model(component, directory, int8=True)
    return directory


# ---- one measured run -------------------------------------------------------------------------
def scenario_tokens(prompt_frames: int, generated_frames: int) -> tuple[int, int]:
    """(prompt tokens, text tokens) whose frames-per-token ratio gives exactly `generated_frames`."""
    for prompt_tokens in range(30, 80):
        for text_tokens in range(1, 400):
            if math.ceil(prompt_frames / prompt_tokens * text_tokens) == generated_frames:
                import numpy as np

                ratio = np.float32(prompt_frames) / np.float32(prompt_tokens)  # float32 as the model does
                if int(np.ceil(ratio * np.float32(text_tokens))) == generated_frames:
                    return prompt_tokens, text_tokens
    raise RuntimeError("no token counts give the scenario's frame count")


def build_acoustic(name: str, backend: str, precision: str, cache: Path, threads: int):
    from voxpipe.registry import get_registry

    spec, registry = CONFIGS[name], get_registry()
    if backend == "onnx":
        info = registry.get("acoustic_model", f"{spec['variant']}-onnx")
        return info.cls(weights=str(prepare_onnx(name, cache)), precision=precision, intra_op_threads=threads)
    dtype = "bfloat16" if precision == "bf16" else "float32"
    return registry.get("acoustic_model", spec["variant"]).cls(weights=str(prepare_model(name, cache)), dtype=dtype)


def run_one(name: str, backend: str, precision: str, cache: Path, threads: int) -> dict:
    import torch

    from voxpipe.registry import get_registry

    torch.set_num_threads(threads)  # benchmark process only; library code never does this
    spec, registry = CONFIGS[name], get_registry()
    features = registry.get("features", "vocos-mel").cls()
    model = build_acoustic(name, backend, precision, cache, threads)
    vocoder = registry.get("vocoder", spec["vocoder"]).cls(weights=str(prepare_vocoder(spec["vocoder"], cache)))
    guidance_name, scale = spec["guidance"]
    if backend == "onnx":
        guidance_name = "distilled"  # both ONNX decoder graphs take the scale as an input
    guidance = registry.get("guidance", guidance_name).cls(scale=scale)
    solver = registry.get("solver", "euler").cls(num_steps=spec["steps"], t_shift=0.5)

    generator = torch.Generator().manual_seed(0)
    prompt_wave = 0.1 * torch.randn(int(PROMPT_SECONDS * SAMPLE_RATE), generator=generator)
    prompt_frames = features(prompt_wave).shape[0]
    generated_frames = TOTAL_FRAMES - prompt_frames
    n_prompt, n_text = scenario_tokens(prompt_frames, generated_frames)
    prompt_ids = torch.randint(1, VOCAB_SIZE, (n_prompt,), generator=generator).tolist()
    text_ids = torch.randint(1, VOCAB_SIZE, (n_text,), generator=generator).tolist()

    def synthesize(text, steps, record):
        clock = Clock(record)
        with torch.inference_mode():
            with clock("front_end"):
                prompt = features(prompt_wave) * model.feat_scale
            lens = torch.tensor([prompt.shape[0]])
            with clock("text_encoder"):
                cond = model.condition([prompt_ids], [text], prompt.unsqueeze(0), lens, 1.0)
            field = guidance.field(model, cond, scale)
            noise = torch.randn(1, cond.num_frames, model.feature_dim, generator=torch.Generator().manual_seed(1))

            def timed_field(x, t):
                with clock(f"step_{len([k for k in record if k.startswith('step_')]) + 1}"):
                    return field(x, t).float()

            x1 = solver.sample(timed_field, noise, num_steps=steps)
            generated = x1[0, int(lens[0]) : int(cond.features_lens[0])]
            with clock("vocoder"):
                wave = vocoder.decode((generated.T / model.feat_scale).unsqueeze(0).float())
        return cond, wave

    synthesize(text_ids[:8], 1, {})  # warm-up: kernel selection, allocator, lazy imports
    calibration = matmul_gflops()
    record: dict[str, dict] = {}
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    cond, wave = synthesize(text_ids, spec["steps"], record)
    total = {"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu}
    audio_seconds = int(cond.features_lens[0]) * HOP / SAMPLE_RATE
    generated_seconds = (int(cond.features_lens[0]) - int(cond.prompt_features_lens[0])) * HOP / SAMPLE_RATE
    steps = [record[k]["wall"] for k in record if k.startswith("step_")]
    acoustic = record["text_encoder"]["wall"] + sum(steps)
    official = spec["official"]
    return {
        "config": name, "backend": backend, "precision": precision, "threads": threads,
        "frames": int(cond.features_lens[0]), "audio_seconds": audio_seconds, "generated_seconds": generated_seconds,
        "output_samples": int(wave.shape[-1]), "stages": record, "total": total,
        "acoustic_seconds": acoustic, "rtf": total["wall"] / audio_seconds,
        "rtf_generated": total["wall"] / generated_seconds,
        "official_seconds": official["acoustic"] + official["vocoder"],
        "matmul_gflops": calibration,
        "official_seconds_calibrated": (official["acoustic"] + official["vocoder"]) * REFERENCE_FP32_GFLOPS / calibration,
        "official_rtf": (official["acoustic"] + official["vocoder"]) / 10.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class Clock:
    """Context manager factory recording wall and CPU seconds per stage name."""

    def __init__(self, record: dict) -> None:
        self.record = record

    def __call__(self, name: str):
        clock = self

        class _Stage:
            def __enter__(self):
                self.wall, self.cpu = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock.record[name] = {"wall": time.perf_counter() - self.wall, "cpu": time.process_time() - self.cpu}

        return _Stage()


# ---- driver -----------------------------------------------------------------------------------
# fp32 matrix-multiply rate (1024x1536 by 1536x512, torch, 2 threads) of the machines the official
# timings were taken on (shared/PERF.md). This VM's rate drifts by +-30 % from run to run, so each
# worker measures it and the official timings are rescaled to the speed of the moment.
REFERENCE_FP32_GFLOPS = 181.0


def matmul_gflops(repeats: int = 30) -> float:
    """Sustained fp32 matmul rate now, GFLOP/s (same shape as the reference figure)."""
    import torch

    a, b = torch.randn(1024, 1536), torch.randn(1536, 512)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * 1024 * 1536 * 512 * repeats / (time.perf_counter() - start) / 1e9


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def table(results: list[dict]) -> str:
    head = ("config", "backend", "prec", "front", "text", "step (mean)", "vocoder", "total s", "cpu s", "RTF",
            "RTF gen", "official s", "vs official", "GF/s now", "vs official (cal.)", "RSS MB")
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append((r["config"], r["backend"], r["precision"], "error: " + r["error"][:60]) + ("",) * 12)
            continue
        stages = r["stages"]
        steps = [v["wall"] for k, v in stages.items() if k.startswith("step_")]
        rows.append((
            r["config"], r["backend"], r["precision"], f"{stages['front_end']['wall']:.3f}",
            f"{stages['text_encoder']['wall']:.3f}", f"{sum(steps) / len(steps):.3f} x{len(steps)}",
            f"{stages['vocoder']['wall']:.3f}", f"{r['total']['wall']:.2f}", f"{r['total']['cpu']:.2f}",
            f"{r['rtf']:.3f}", f"{r['rtf_generated']:.3f}", f"{r['official_seconds']:.1f}",
            f"{r['official_seconds'] / r['total']['wall']:.2f}x", f"{r['matmul_gflops']:.0f}",
            f"{r['official_seconds_calibrated'] / r['total']['wall']:.2f}x", f"{r['peak_rss_mb']:.0f}",
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="luxtts,zipvoice_distill,zipvoice")
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--precisions", default="fp32,int8,bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "voxpipe-bench"),
                        help="where the random-weight models and their ONNX exports are kept")
    parser.add_argument("--worker", nargs=3, metavar=("CONFIG", "BACKEND", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    if args.worker:
        print(json.dumps(run_one(*args.worker, cache=cache, threads=args.threads)))
        return 0

    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {sorted(CONFIGS)}")
    results, skipped = [], []
    for name in configs:
        for backend in args.backends.split(","):
            for precision in args.precisions.split(","):
                if (backend, precision) not in SUPPORTED:
                    skipped.append(f"{backend}/{precision}")
                    continue
                print(f"running {name} {backend} {precision} (load average {load_average():.1f}) ...", file=sys.stderr)
                command = [sys.executable, __file__, "--worker", name, backend, precision,
                           "--threads", str(args.threads), "--cache", str(cache)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    error = (done.stderr.strip().splitlines() or ["failed"])[-1]
                    results.append({"config": name, "backend": backend, "precision": precision, "error": error})
                    print(done.stderr[-2000:], file=sys.stderr)
                    continue
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(table(results))
    if skipped:
        print(f"\nskipped unsupported backend/precision pairs: {', '.join(sorted(set(skipped)))}")
    print(f"\nload average at the end: {load_average():.1f} on {os.cpu_count()} CPUs "
          "(wall times are only comparable on an otherwise idle machine; see the cpu column)")
    if args.json:
        meta = {"threads": args.threads, "cpu_count": os.cpu_count(), "load_average_end": load_average(),
                "scenario": {"prompt_seconds": PROMPT_SECONDS, "total_frames": TOTAL_FRAMES}}
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
