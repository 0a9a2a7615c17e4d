#!/usr/bin/env python
"""Side-by-side speed of the official ZipVoice/LuxTTS code and voxpipe's paths, in one interleaved run.

    python benchmarks/side_by_side.py --official /tmp/zv-official --official-python /tmp/ref-perf/bin/python
    python benchmarks/side_by_side.py ... --scenarios luxtts,zipvoice --rounds 5 --json out.json

Every path gets the same full-size random weights (official ZipVoice model.json), the same inputs
(3 s prompt + 7 s generated = 938 frames) and the same thread count. Each path lives in its own
worker process, warms up once on the scenario's exact shapes, then the driver asks the workers
in turn for one timed synthesis per round (the order rotates every round), so load changes on a
shared machine hit every path alike. Reported: per-stage medians (text encoder, decoder steps,
vocoder), the median total, ratios of medians against the official torch path, the fp32 GEMM
rate measured before and after, the CPU model and its flags.

Paths (see benchmarks/README.md for the reference environment):
  official        k2-fsa/ZipVoice `ZipVoice[Distill].sample()` in torch fp32 (reference venv) +
                  the official `vocos` package's Vocos (backbone + ISTFT head, 24 kHz)
  official-onnx   the official exporter (`zipvoice/bin/onnx_export.py`, the graphs LuxTTS ships for
                  its CPU path) run the way `infer_zipvoice_onnx.py` runs them, fp32, + the same vocoder
  torch-fp32      voxpipe's torch model, the bit-exact parity path (the default)
  torch-fast      voxpipe's torch model with `kernels: fused` (fp32, fused chains, faster CPU kernels)
  torch-bf16 / torch-bf16-fast   the same in bf16 (`dtype: bfloat16`, the vocoder's body too; only fast with
                  native bf16)
  torch-fast-torch-ops / torch-bf16-fast-torch-ops   torch-fast / torch-bf16-fast without the native
                  kernels (their element-wise chains as torch operations); only with --paths
  onnx-fp32 / onnx-int8   voxpipe's export on onnxruntime (int8: dynamic quantization, opt-in)
LuxTTS's 48 kHz vocoder (LinaCodec's upsampler + 48 kHz head) has no installable official
implementation here, so the official paths' vocoder stage is the 24 kHz Vocos alone: a lower bound
of the official LuxTTS vocoder time (voxpipe's vocoder stage includes the 48 kHz head).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import roofline
import run as bench

PROTOCOL = "@@"  # worker stdout lines carrying results start with this
SCENARIOS = {
    # name: run.py config, distilled?, steps, guidance scale, t_shift
    "luxtts": dict(config="luxtts", distill=True, steps=4, scale=3.0, t_shift=0.5),
    "zipvoice": dict(config="zipvoice", distill=False, steps=16, scale=1.0, t_shift=0.5),
}
# voxpipe torch paths: (dtype, kernels) of the acoustic model
TORCH_PATHS = {
    "torch-fp32": ("float32", "reference"),
    "torch-fast": ("float32", "fused"),
    "torch-bf16": ("bfloat16", "reference"),
    "torch-bf16-fast": ("bfloat16", "fused"),
    "torch-fast-torch-ops": ("float32", "fused"),
    "torch-bf16-fast-torch-ops": ("bfloat16", "fused"),
}
# The fused kernels with their element-wise chains as torch operations (VOXPIPE_NATIVE_KERNELS=0):
# what the native kernels (voxpipe/core/native.py) save, timed in the same run. Only with --paths.
NATIVE_OFF_PATHS = ("torch-fast-torch-ops", "torch-bf16-fast-torch-ops")
VOXPIPE_PATHS = (*TORCH_PATHS, "onnx-fp32", "onnx-int8")
OFFICIAL_PATHS = ("official", "official-onnx")
DEFAULT_PATHS = ("official", "official-onnx", "torch-fp32", "torch-fast", "onnx-int8")
NATIVE_BF16_PATHS = ("torch-bf16", "torch-bf16-fast")  # added to the default where the CPU has native bf16


# ---- models (cached) --------------------------------------------------------------------------
FIXTURE_MODEL = HERE.parent / "tests" / "fixtures" / "e2e" / "model" / "model.json"


def model_config(size: str) -> dict:
    """full: the official ZipVoice model.json; small: the test fixture's tiny widths (a quick
    functional check of the benchmark itself, timings meaningless)."""
    if size == "full":
        return bench.ZIPVOICE_MODEL
    return json.loads(FIXTURE_MODEL.read_text())["model"]


def model_dir(spec: dict, cache: Path, size: str) -> Path:
    """Random-weight model in the official layout (model.pt, model.json, tokens.txt), built once."""
    variant = bench.CONFIGS[spec["config"]]["variant"]
    if size == "full":
        return bench.prepare_model(spec["config"], cache)
    directory = cache / f"{variant}-{size}" / "model"
    if (directory / "model.pt").is_file():
        return directory
    import torch

    from voxpipe.plugins.zipvoice.loading import network_class

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = model_config(size)
    model = network_class(variant)(**config, vocab_size=bench.VOCAB_SIZE, pad_id=0)
    (directory / "model.json").write_text(json.dumps({"model": config, "feature": {
        "sampling_rate": bench.SAMPLE_RATE, "type": "vocos"}}))
    tokens = ["_"] + [f"t{i}" for i in range(1, bench.VOCAB_SIZE)]
    (directory / "tokens.txt").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)))
    torch.save({"model": model.state_dict()}, directory / "model.pt.tmp")
    os.replace(directory / "model.pt.tmp", directory / "model.pt")
    return directory


def onnx_dir(spec: dict, cache: Path, size: str) -> Path:
    """voxpipe's fp32 + int8 export of `model_dir`, built once."""
    if size == "full":
        return bench.prepare_onnx(spec["config"], cache)
    from voxpipe.export.onnx import export_acoustic_model
    from voxpipe.registry import get_registry

    directory = model_dir(spec, cache, size).parent / "onnx"
    if not (directory / "fm_decoder_int8.onnx").is_file():
        variant = bench.CONFIGS[spec["config"]]["variant"]
        component = get_registry().get("acoustic_model", variant).cls.create(weights=str(model_dir(spec, cache, size)))
        export_acoustic_model(component, directory, int8=True)
    return directory


# ---- shared inputs ----------------------------------------------------------------------------
def prepare_inputs(scenario: str, cache: Path) -> Path:
    """Prompt features (Tp, 100, already x0.1), token ids and start noise every path uses."""
    import torch

    from voxpipe.registry import get_registry

    path = cache / f"inputs-{scenario}.pt"
    if path.is_file():
        return path
    generator = torch.Generator().manual_seed(0)
    prompt_wave = 0.1 * torch.randn(int(bench.PROMPT_SECONDS * bench.SAMPLE_RATE), generator=generator)
    features = get_registry().get("features", "vocos-mel").cls()
    prompt = features(prompt_wave) * 0.1  # (Tp, 100), ZipVoice's feature scale
    generated = bench.TOTAL_FRAMES - prompt.shape[0]
    n_prompt, n_text = bench.scenario_tokens(prompt.shape[0], generated)
    data = {
        "prompt_features": prompt,
        "prompt_ids": torch.randint(1, bench.VOCAB_SIZE, (n_prompt,), generator=generator).tolist(),
        "text_ids": torch.randint(1, bench.VOCAB_SIZE, (n_text,), generator=generator).tolist(),
        "noise": torch.randn(1, bench.TOTAL_FRAMES, 100, generator=generator),
    }
    torch.save(data, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    return path


class Stages:
    """Accumulates wall seconds per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def timed(self, name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return wrapper


# ---- workers: one per path, `run` on stdin -> one JSON result line ----------------------------
def install_torchaudio_placeholder() -> None:
    """torchaudio has no build for torch 2.13; `vocos` imports it for its mel front end and its
    mel-scale head helpers, neither of which the benchmark runs. Put importable placeholders in
    sys.modules that fail loudly if anything does call them."""
    try:
        import torchaudio  # noqa: F401
        return
    except Exception:  # noqa: BLE001, S110 - any failure: use the placeholder
        pass
    import types

    def unavailable(*args, **kwargs):
        raise RuntimeError("torchaudio is not available in this reference environment")

    def placeholder_attribute(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return unavailable

    names = ("torchaudio", "torchaudio.functional", "torchaudio.functional.functional", "torchaudio.transforms")
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so submodules import
        module.__getattr__ = placeholder_attribute
        sys.modules[name] = module


def official_vocoder(cache: Path):
    """The official `vocos` package's 24 kHz Vocos network (backbone + ISTFT head), cached weights."""
    import torch

    install_torchaudio_placeholder()
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    backbone = VocosBackbone(input_channels=100, dim=512, intermediate_dim=1536, num_layers=8)
    head = ISTFTHead(dim=512, n_fft=1024, hop_length=256, padding="center")
    state = torch.load(bench.prepare_vocoder("vocos-24k", cache) / "pytorch_model.bin", map_location="cpu")
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    backbone.eval(), head.eval()
    return lambda mel: head(backbone(mel))


def official_model(spec: dict, cache: Path, size: str):
    import torch
    from zipvoice.models.zipvoice import ZipVoice
    from zipvoice.models.zipvoice_distill import ZipVoiceDistill

    cls = ZipVoiceDistill if spec["distill"] else ZipVoice
    model = cls(**model_config(size), vocab_size=bench.VOCAB_SIZE, pad_id=0)
    state = torch.load(model_dir(spec, cache, size) / "model.pt", map_location="cpu")["model"]
    model.load_state_dict(state, strict=True)
    return model.eval()


def make_official(spec: dict, cache: Path, data: dict, size: str):
    import torch

    model = official_model(spec, cache, size)
    vocoder = official_vocoder(cache)
    stages = Stages()
    model.forward_text_inference_ratio_duration = stages.timed(
        "text_encoder", model.forward_text_inference_ratio_duration)
    # The official solver keeps the bound method it was built with (solver.model.model_func).
    diffusion = model.solver.model
    diffusion.model_func = stages.timed("decoder", diffusion.model_func)
    prompt = data["prompt_features"].unsqueeze(0)
    lens = torch.tensor([prompt.shape[1]])

    def synthesize() -> dict:
        stages.seconds = {}
        with torch.inference_mode():
            torch.manual_seed(1)
            generated, *_ = model.sample(
                tokens=[data["text_ids"]], prompt_tokens=[data["prompt_ids"]], prompt_features=prompt,
                prompt_features_lens=lens, speed=1.0, t_shift=spec["t_shift"], duration="predict",
                num_step=spec["steps"], guidance_scale=spec["scale"])
            start = time.perf_counter()
            vocoder((generated / 0.1).permute(0, 2, 1))
            stages.add("vocoder", time.perf_counter() - start)
        # decoder frames (prompt + generated), the number the other paths report
        return {"stages": stages.seconds, "frames": int(prompt.shape[1] + generated.shape[1])}

    return synthesize


def export_official_onnx(spec: dict, cache: Path, size: str) -> Path:
    """fp32 text-encoder and decoder graphs made by the official exporter's own wrappers."""
    import torch
    from zipvoice.bin import onnx_export as official
    from zipvoice.utils.scaling_converter import convert_scaled_to_non_scaled

    directory = model_dir(spec, cache, size).parent / "official-onnx"
    if (directory / "fm_decoder.onnx").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    model = official_model(spec, cache, size)
    # The official exporter was written for the TorchScript exporter, torch.onnx.export's default
    # before torch 2.9; torch 2.13 defaults to the dynamo exporter (needs onnxscript, and rejects
    # the traced module), so it is asked for explicitly in this worker process.
    export = torch.onnx.export
    torch.onnx.export = lambda *args, **kwargs: export(*args, **{"dynamo": False, **kwargs})
    with torch.no_grad():
        convert_scaled_to_non_scaled(model, inplace=True, is_onnx=True)
        official.export_text_encoder(official.OnnxTextModel(model=model), str(directory / "text_encoder.onnx"), 13)
        official.export_fm_decoder(official.OnnxFlowMatchingModel(model=model, distill=spec["distill"]),
                                   str(directory / "fm_decoder.tmp.onnx"), 13)
    os.replace(directory / "fm_decoder.tmp.onnx", directory / "fm_decoder.onnx")
    return directory


def make_official_onnx(spec: dict, cache: Path, data: dict, threads: int, size: str):
    """The loop of the official `infer_zipvoice_onnx.py` (sessions with intra = inter = threads)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from zipvoice.models.modules.solver import get_time_steps

    directory = export_official_onnx(spec, cache, size)
    options = ort.SessionOptions()
    options.inter_op_num_threads = threads
    options.intra_op_num_threads = threads
    text_encoder = ort.InferenceSession(str(directory / "text_encoder.onnx"), options, providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(directory / "fm_decoder.onnx"), options, providers=["CPUExecutionProvider"])
    vocoder = official_vocoder(cache)
    prompt = data["prompt_features"].unsqueeze(0).numpy()
    stages = Stages()

    def synthesize() -> dict:
        stages.seconds = {}
        start = time.perf_counter()
        feeds = dict(zip([i.name for i in text_encoder.get_inputs()], [
            np.array([data["text_ids"]], dtype=np.int64), np.array([data["prompt_ids"]], dtype=np.int64),
            np.array(prompt.shape[1], dtype=np.int64), np.array(1.0, dtype=np.float32)]))
        text_condition = text_encoder.run(None, feeds)[0]
        stages.add("text_encoder", time.perf_counter() - start)
        frames = text_condition.shape[1]
        speech_condition = np.zeros_like(text_condition)
        speech_condition[:, : prompt.shape[1]] = prompt
        x = data["noise"][:, :frames].numpy()
        times = get_time_steps(0.0, 1.0, spec["steps"], spec["t_shift"]).numpy()
        names = [i.name for i in decoder.get_inputs()]
        start = time.perf_counter()
        for step in range(spec["steps"]):
            v = decoder.run(None, dict(zip(names, [
                np.array(times[step], dtype=np.float32), x, text_condition, speech_condition,
                np.array(spec["scale"], dtype=np.float32)])))[0]
            x = x + v * (times[step + 1] - times[step])
        stages.add("decoder", time.perf_counter() - start)
        start = time.perf_counter()
        with torch.inference_mode():
            vocoder(torch.from_numpy(x[:, prompt.shape[1]:] / 0.1).permute(0, 2, 1))
        stages.add("vocoder", time.perf_counter() - start)
        return {"stages": stages.seconds, "frames": int(frames)}

    return synthesize


def make_voxpipe(path: str, spec: dict, cache: Path, data: dict, threads: int, size: str):
    import torch

    from voxpipe.core.allocator import retain_freed_memory
    from voxpipe.registry import get_registry

    retain_freed_memory(retain_freed_memory_mb() << 20)  # what building a Pipeline does
    registry = get_registry()
    config = bench.CONFIGS[spec["config"]]
    vocoder_kernels, vocoder_dtype = "fused", "float32"  # what --precision auto/int8 give the vocoder
    if path.startswith("onnx"):
        precision = path.split("-")[1]
        info = registry.get("acoustic_model", f"{config['variant']}-onnx")
        model = info.cls.create(weights=str(onnx_dir(spec, cache, size)), precision=precision,
                                intra_op_threads=threads)
        guidance_name = "distilled"  # both voxpipe ONNX decoder graphs take the scale as an input
    else:
        info = registry.get("acoustic_model", config["variant"])
        dtype, kernels = TORCH_PATHS[path]
        model = info.cls.create(weights=str(model_dir(spec, cache, size)), dtype=dtype, kernels=kernels)
        guidance_name = config["guidance"][0]
        vocoder_kernels, vocoder_dtype = kernels, dtype  # bf16: the vocoder's body too, as --precision bf16
    vocoder = registry.get("vocoder", config["vocoder"]).cls.create(
        weights=str(bench.prepare_vocoder(config["vocoder"], cache)), kernels=vocoder_kernels, dtype=vocoder_dtype)
    guidance = registry.get("guidance", guidance_name).cls.create(scale=spec["scale"])
    solver = registry.get("solver", "euler").cls.create(num_steps=spec["steps"], t_shift=spec["t_shift"])
    prompt = data["prompt_features"].unsqueeze(0)
    lens = torch.tensor([prompt.shape[1]])
    stages = Stages()

    def synthesize() -> dict:
        stages.seconds = {}
        with torch.inference_mode():
            start = time.perf_counter()
            cond = model.condition([data["prompt_ids"]], [data["text_ids"]], prompt, lens, 1.0)
            stages.add("text_encoder", time.perf_counter() - start)
            field = stages.timed("decoder", guidance.field(model, cond, spec["scale"]))
            x1 = solver.sample(field, data["noise"][:, : cond.num_frames], num_steps=spec["steps"])
            generated = x1[0, int(lens[0]) : int(cond.features_lens[0])]
            start = time.perf_counter()
            vocoder.decode((generated.T / model.feat_scale).unsqueeze(0).float())
            stages.add("vocoder", time.perf_counter() - start)
        return {"stages": stages.seconds, "frames": int(cond.num_frames)}

    return synthesize


def worker(args) -> int:
    import torch

    torch.set_num_threads(args.threads)  # benchmark process only
    spec, cache = SCENARIOS[args.scenario], Path(args.cache)
    data = torch.load(args.inputs)
    if args.worker in OFFICIAL_PATHS:
        sys.path.insert(0, str(Path(args.official).resolve()))
        if args.official_allocator_mb:
            official_retain_freed_memory(args.official_allocator_mb)
    if args.worker == "official":
        synthesize = make_official(spec, cache, data, args.model)
    elif args.worker == "official-onnx":
        synthesize = make_official_onnx(spec, cache, data, args.threads, args.model)
    else:
        synthesize = make_voxpipe(args.worker, spec, cache, data, args.threads, args.model)
    synthesize()  # warm-up on the measured shapes (kernel choice, allocator, lazy imports)
    ready = {"ready": True, "python": sys.executable, "torch": torch.__version__}
    if args.worker in TORCH_PATHS:
        from voxpipe.plugins.zipvoice import native_kernels

        fused = TORCH_PATHS[args.worker][1] == "fused"
        ready["native_kernels"] = native_kernels.prepare() if fused else "not used (reference kernels)"
    if args.count_flops:
        ready["gflop"] = roofline.synthesis_gflops(synthesize)
    print(PROTOCOL, json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        result = synthesize()
        result["total"] = time.perf_counter() - start
        print(PROTOCOL, json.dumps(result), flush=True)
    return 0


def official_retain_freed_memory(limit_mb: int) -> None:
    """Give an official worker the allocator setting of voxpipe's pipelines (glibc keeps freed
    memory: `settings.retain_freed_memory_mb`). The reference environment does not import voxpipe,
    so voxpipe/core/allocator.py (standard library only) is loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("voxpipe_allocator", HERE.parent / "voxpipe" / "core" / "allocator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.retain_freed_memory(limit_mb << 20):
        raise SystemExit("--official-allocator retain: this C library is not glibc")


# ---- driver -----------------------------------------------------------------------------------
class Worker:
    def __init__(self, path: str, python: str, args, inputs: Path) -> None:
        self.path = path
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads))
        if path in NATIVE_OFF_PATHS:
            env["VOXPIPE_NATIVE_KERNELS"] = "0"
        command = [python, str(Path(__file__).resolve()), "--worker", path, "--scenario", args.scenario_now,
                   "--cache", str(args.cache), "--inputs", str(inputs), "--threads", str(args.threads),
                   "--model", args.model]
        if path == args.flops_path:
            command.append("--count-flops")
        if args.official:
            command += ["--official", args.official]
        if path in OFFICIAL_PATHS and args.official_allocator == "retain":
            command += ["--official-allocator-mb", str(retain_freed_memory_mb())]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.error: str | None = None
        self.ready: dict = {}

    def read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL):])
        raise RuntimeError(f"worker {self.path} exited with code {self.process.wait()} (its stderr is above)")

    def run(self) -> dict:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def retain_freed_memory_mb() -> int:
    from voxpipe.core.settings import PipelineSettings

    return PipelineSettings().retain_freed_memory_mb


def default_paths() -> tuple[str, ...]:
    """The paths timed without --paths: bf16 only where it is not emulated (10x slower)."""
    from voxpipe.core.cpu import detect

    return DEFAULT_PATHS + (NATIVE_BF16_PATHS if detect().has_bf16 else ())


def cpu_report() -> list[str]:
    import torch

    from voxpipe.core.cpu import detect

    cpu = detect()
    return [f"CPU: {cpu.summary()}", f"vector level: {cpu.vector_level}; bf16 native: {cpu.has_bf16}; "
            f"int8 dot (VNNI/AMX): {cpu.has_int8_dot}; torch {torch.__version__} "
            f"capability {torch.backends.cpu.get_cpu_capability()}"]


def summarize(scenario: str, rounds: dict[str, list[dict]], errors: dict[str, str],
              gflop: float | None = None, rates: dict[str, float] | None = None) -> list[str]:
    """The table of medians and ratios; with the counted work (`gflop`) and the measured GEMM
    `rates`, also each path's share of the fp32 floor and the roofline lines."""
    fp32_floor = gflop / rates["fp32"] if gflop and rates and rates.get("fp32") else None

    def median(path: str, stage: str | None) -> float:
        values = [r["total"] if stage is None else r["stages"].get(stage, 0.0) for r in rounds[path]]
        return statistics.median(values)

    reference = "official" if "official" in rounds else next(iter(rounds), None)
    lines = [f"\n== {scenario}: medians of {len(next(iter(rounds.values()), []))} rounds, seconds =="]
    head = ("path", "text enc", "decoder", "vocoder", "acoustic", "total", "min total", "acoustic x", "total x",
            "fp32 floor/total")
    rows = [head]
    for path in rounds:
        acoustic = median(path, "text_encoder") + median(path, "decoder")
        ref_acoustic = median(reference, "text_encoder") + median(reference, "decoder")
        rows.append((path, f"{median(path, 'text_encoder'):.3f}", f"{median(path, 'decoder'):.2f}",
                     f"{median(path, 'vocoder'):.3f}", f"{acoustic:.2f}", f"{median(path, None):.2f}",
                     f"{min(r['total'] for r in rounds[path]):.2f}",
                     f"{ref_acoustic / acoustic:.2f}x", f"{median(reference, None) / median(path, None):.2f}x",
                     f"{fp32_floor / median(path, None):.0%}" if fp32_floor else "-"))
    for path, error in errors.items():
        rows.append((path, "not run: " + error[:100]) + ("",) * (len(head) - 2))
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    lines += ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)) for row in rows]
    lines.insert(2, "  ".join("-" * w for w in widths))
    lines.append(f"ratios (x) = median of {reference!r} / median of the path: > 1 is faster than {reference!r}")
    if "official" in rounds and scenario == "luxtts":
        lines.append("official vocoder = 24 kHz Vocos only (LinaCodec's 48 kHz upsampler/head is not installable)")
    if gflop and rates:
        official = median("official", None) if "official" in rounds else None
        lines += roofline.report(gflop, rates, official)
        lines.append("floor = counted work / GEMM rate (element-wise ops, softmax, FFTs not counted): no path "
                     "at that precision can be faster; fp32 floor/total = the share of a path's time that "
                     "the fp32 matrix work alone needs")
    return lines


def run_rounds(scenario: str, workers: list, errors: dict, count: int) -> dict[str, list[dict]]:
    """Wait for every worker's warm-up, then `count` rounds of one timed run each, rotating the order."""
    ready = []
    for w in workers:  # each worker warms up as soon as it starts; this only waits for it
        try:
            w.ready = w.read()
            ready.append(w)
            native = f" (native kernels: {w.ready['native_kernels']})" if "native_kernels" in w.ready else ""
            print(f"[{scenario}] {w.path} ready{native}", flush=True)
        except Exception as error:  # noqa: BLE001 - report the path as not run, time the rest
            errors[w.path] = str(error)
    rounds: dict[str, list[dict]] = {w.path: [] for w in ready}
    for index in range(count):
        order = ready[index % len(ready):] + ready[: index % len(ready)] if ready else []
        for w in order:
            result = w.run()
            rounds[w.path].append(result)
            print(f"[{scenario}] round {index + 1} {w.path}: {result['total']:.2f} s", flush=True)
    return rounds


def driver(args) -> int:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    paths = [p for p in (args.paths or ",".join(default_paths())).split(",") if p]
    unknown = [p for p in paths if p not in OFFICIAL_PATHS + VOXPIPE_PATHS]
    if unknown:
        raise SystemExit(f"--paths: unknown {unknown}; expected some of {OFFICIAL_PATHS + VOXPIPE_PATHS}")
    official_ok = args.official and (Path(args.official) / "zipvoice" / "models" / "zipvoice.py").is_file()
    import torch

    torch.set_num_threads(args.threads)  # the GEMM rate below at the workers' thread count
    report = cpu_report()
    print("\n".join(report), flush=True)
    gemm_before = bench.matmul_gflops()
    print(f"fp32 GEMM rate now (1024x1536 @ 1536x512, {args.threads} threads): {gemm_before:.0f} GFLOP/s",
          flush=True)
    rates = roofline.gemm_rates(bench.TOTAL_FRAMES)
    print("GEMM rates at the decoder's shape: " + ", ".join(f"{p} {r:.0f}" for p, r in rates.items()) + " GFLOP/s",
          flush=True)
    results: dict = {"cpu": report, "threads": args.threads, "gemm_gflops_before": gemm_before,
                     "gemm_rates": rates, "scenarios": {}}
    # one worker counts the work of a synthesis (a torch path: the counter sees torch operations only)
    args.flops_path = next((p for p in ("torch-fp32", "torch-fast", "official") if p in paths), None)
    output = list(report)
    for scenario in args.scenarios.split(","):
        spec = SCENARIOS[scenario]
        args.scenario_now = scenario
        model_dir(spec, cache, args.model)
        bench.prepare_vocoder(bench.CONFIGS[spec["config"]]["vocoder"], cache)
        bench.prepare_vocoder("vocos-24k", cache)  # the official paths' vocoder
        if any(p.startswith("onnx") for p in paths):
            onnx_dir(spec, cache, args.model)
        inputs = prepare_inputs(scenario, cache)
        workers, errors = [], {}
        for path in paths:
            if path in OFFICIAL_PATHS and not official_ok:
                errors[path] = "no official checkout (--official DIR with zipvoice/models/zipvoice.py)"
                continue
            python = args.official_python if path in OFFICIAL_PATHS else sys.executable
            workers.append(Worker(path, python, args, inputs))
        try:
            rounds = run_rounds(scenario, workers, errors, args.rounds)
        finally:
            for w in workers:
                w.close()
        gflop = next((w.ready["gflop"] for w in workers if "gflop" in w.ready), None)
        lines = summarize(scenario, rounds, errors, gflop, rates)
        lines.append(f"malloc: voxpipe paths keep freed memory as their pipelines do (settings.retain_freed_memory_mb="
                     f"{retain_freed_memory_mb()}); official paths: "
                     + ("the same (--official-allocator retain)" if args.official_allocator == "retain"
                        else "glibc's defaults, as their code leaves it"))
        if args.model != "full":
            lines.append(f"model {args.model!r}: a functional check, not a measurement")
        print("\n".join(lines), flush=True)
        output += lines
        results["scenarios"][scenario] = {"rounds": rounds, "errors": errors, "gflop": gflop,
                                          "official_allocator": args.official_allocator}
    gemm_after = bench.matmul_gflops()
    results["gemm_gflops_after"] = gemm_after
    tail = (f"fp32 GEMM rate before/after: {gemm_before:.0f} / {gemm_after:.0f} GFLOP/s; "
            f"load average now {bench.load_average():.1f} (only ratios within one run compare)")
    print(tail)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", default=None, help="k2-fsa/ZipVoice checkout (its zipvoice/ package)")
    parser.add_argument("--official-python", default=sys.executable,
                        help="python of the reference environment (torch, vocos, lhotse, onnx, ...)")
    parser.add_argument("--scenarios", default="luxtts", help="luxtts (4 steps, 48 kHz) and/or zipvoice (16 steps, CFG)")
    parser.add_argument("--paths", default=None,
                        help=f"some of {','.join(OFFICIAL_PATHS + VOXPIPE_PATHS)} (default: "
                             f"{','.join(DEFAULT_PATHS)}, plus {','.join(NATIVE_BF16_PATHS)} on CPUs with native bf16)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "voxpipe-bench"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--model", choices=("full", "small"), default="full",
                        help="full: official widths (the measurement); small: the test fixture's tiny model, "
                             "a quick check that every path runs (timings meaningless)")
    parser.add_argument("--official-allocator", choices=("default", "retain"), default="default",
                        help="default: the official paths run with malloc as their code leaves it; retain: with the "
                             "setting voxpipe's pipelines apply (settings.retain_freed_memory_mb), to separate its gain")
    parser.add_argument("--official-allocator-mb", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return worker(args) if args.worker else driver(args)


if __name__ == "__main__":
    sys.exit(main())
