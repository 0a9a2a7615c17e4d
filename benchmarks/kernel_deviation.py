#!/usr/bin/env python
"""How far faster float32 kernels move a full-size ZipVoice decoder from the parity path, in units
of the parity tests' bounds, and how much time they save (issue 22 item 3: the parity path).

    python benchmarks/kernel_deviation.py [--variant zipvoice-distill|zipvoice] [--weights spread|init]

The reference kernels run the official operation order on the same CPU kernels as the official
code (MKL's float32 GEMMs, oneDNN's 1-D depthwise convolution), so they reproduce the official
outputs bit for bit on the same machine. Each candidate below changes only how a sum is
evaluated, never the function:

  onednn-gemm    the Linear layers on oneDNN's GEMM (voxpipe/core/onednn.py) instead of MKL's
  conv-nhwc      the depthwise convolutions in channels-last memory (zipformer.depthwise_conv_over_time)
  both           the two together
  fused          `kernels: fused` (the two plus the fused element-wise chains: the fast fp32 path)

For each: one decoder call's time (median of --repeats) and the largest |candidate - reference|
divided by the bound tests/parity/test_zipvoice_parity.py allows against the official code:
1e-5 + 1e-5 |ref| for one call (velocity, text condition), 1e-4 + 1e-5 |ref| for the state after
all sampling steps. A ratio above 1 means a full-size fixture made by the official code would
fail the parity tests with that kernel.

Weights: `spread` sets, as the fixture generator does (tests/fixtures/zipvoice/README.md), biases,
bypass scales and norm parameters to spread random values on top of the official initialisation
(approximated: the same kinds and ranges, not the same draws); `init` keeps the official
initialisation (biases 0, bypass 0.5: what benchmarks/run.py builds). Input: the fixture's real
recording as prompt, ~10 s in all. Nothing is downloaded; the model is built in --cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run as bench

PROMPT_WAV = HERE.parent / "tests" / "fixtures" / "e2e" / "cmu_arctic_a0009.wav"
CANDIDATES = ("onednn-gemm", "conv-nhwc", "both", "fused")
SINGLE = (1e-5, 1e-5)
FINAL = (1e-4, 1e-5)
SAMPLING = {"zipvoice-distill": {"steps": 4, "scale": 3.0, "guidance": "distilled"},
            "zipvoice": {"steps": 16, "scale": 1.0, "guidance": "cfg"}}


def build_model(variant: str, weights: str, cache: Path) -> Path:
    """Full-size random-weight model directory (official layout), built once per (variant, weights)."""
    import torch

    from voxpipe.plugins.zipvoice.loading import network_class

    directory = cache / f"{variant}-{weights}"
    if (directory / "model.pt").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = network_class(variant)(**bench.ZIPVOICE_MODEL, vocab_size=bench.VOCAB_SIZE, pad_id=0)
    if weights == "spread":
        draw = torch.Generator().manual_seed(1)
        # (name suffix, centre, half-width) of uniform values, the first match wins
        rules = (("bypass_scale", 0.55, 0.4), ("norm.log_scale", 1.0, 0.5), ("norm.bias", 0.0, 0.85),
                 ("downsample.bias", 0.0, 1.5), ("depthwise_conv.bias", 0.0, 0.28), ("bias", 0.0, 0.09))
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                for suffix, centre, half in rules:
                    if name.endswith(suffix):
                        parameter.copy_(centre + half * (2 * torch.rand(parameter.shape, generator=draw) - 1))
                        break
    torch.save({"model": model.state_dict()}, directory / "model.pt")
    (directory / "model.json").write_text(json.dumps({"model": bench.ZIPVOICE_MODEL, "feature": {
        "sampling_rate": bench.SAMPLE_RATE, "type": "vocos"}}))
    tokens = ["_"] + [f"t{i}" for i in range(1, bench.VOCAB_SIZE)]
    (directory / "tokens.txt").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)))
    return directory


class ReferenceWithFasterSums:
    """Switches the reference kernels' GEMMs and/or depthwise convolutions to the faster ones,
    leaving every other operation in the official order (for this measurement only)."""

    def __init__(self) -> None:
        import torch
        from torch import nn

        from voxpipe.core import onednn
        from voxpipe.plugins.zipvoice import scaling, zipformer

        self.gemm = self.conv = False
        plain_linear, plain_conv = scaling._linear, nn.Conv1d.forward

        def linear(x, weight, bias):
            if self.gemm and onednn.runs_fp32_linear(x):
                return onednn.LINEAR(x.contiguous(), weight, bias, "none", [], "")
            return plain_linear(x, weight, bias)

        def conv(module, x):
            depthwise = module.groups == module.in_channels > 1 and x.dim() == 3
            if self.conv and depthwise and not torch.is_grad_enabled():
                return zipformer.depthwise_conv_over_time(module, x)
            return plain_conv(module, x)

        scaling._linear, nn.Conv1d.forward = linear, conv

    def use(self, candidate: str) -> None:
        self.gemm = candidate in ("onednn-gemm", "both")
        self.conv = candidate in ("conv-nhwc", "both")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(SAMPLING), default="zipvoice-distill")
    parser.add_argument("--weights", choices=("spread", "init"), default="spread")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed decoder calls per kernel choice")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voxpipe-kernel-deviation"))
    args = parser.parse_args(argv)

    import torch

    from voxpipe.audio.io import load_audio
    from voxpipe.registry import get_registry

    torch.set_num_threads(args.threads)
    registry = get_registry()
    directory = build_model(args.variant, args.weights, args.cache)
    switch = ReferenceWithFasterSums()
    models = {kernels: registry.get("acoustic_model", args.variant).cls.create(weights=str(directory), kernels=kernels)
              for kernels in ("reference", "fused")}
    wave = load_audio(PROMPT_WAV, bench.SAMPLE_RATE).samples
    prompt = registry.get("features", "vocos-mel").cls()(wave).unsqueeze(0) * models["reference"].feat_scale
    draw = torch.Generator().manual_seed(0)
    prompt_ids = [torch.randint(1, bench.VOCAB_SIZE, (30,), generator=draw).tolist()]
    text_ids = [torch.randint(1, bench.VOCAB_SIZE, (70,), generator=draw).tolist()]
    sampling = SAMPLING[args.variant]
    guidance = registry.get("guidance", sampling["guidance"]).cls.create(scale=sampling["scale"])
    solver = registry.get("solver", "euler").cls.create(num_steps=sampling["steps"], t_shift=0.5)
    scale_input = sampling["scale"] if sampling["guidance"] == "distilled" else None

    def run(model) -> dict:
        with torch.inference_mode():
            cond = model.condition(prompt_ids, text_ids, prompt, torch.tensor([prompt.shape[1]]), 1.0)
            noise = torch.randn(1, cond.num_frames, prompt.shape[2], generator=torch.Generator().manual_seed(3))
            seconds = []
            for _ in range(args.repeats + 1):  # the first call warms up
                start = time.perf_counter()
                velocity = model.velocity(noise, 0.3, cond, scale_input)
                seconds.append(time.perf_counter() - start)
            final = solver.sample(guidance.field(model, cond, sampling["scale"]), noise, num_steps=sampling["steps"])
        return {"text": cond.text_condition, "velocity": velocity, "final": final,
                "seconds": statistics.median(seconds[1:]), "frames": cond.num_frames}

    def ratio(actual, expected, bound) -> float:
        atol, rtol = bound
        expected = expected.double()
        return float(((actual.double() - expected).abs() / (atol + rtol * expected.abs())).max())

    switch.use("reference")
    reference = run(models["reference"])
    print(f"{args.variant}, {args.weights} weights, {reference['frames']} frames, {args.threads} threads, "
          f"{sampling['steps']} steps; ratios = max |candidate - reference| / parity bound")
    print(f"{'kernels':<12} {'call s':>7} {'speed-up':>8} {'text':>8} {'velocity':>9} {'final':>8}")
    print(f"{'reference':<12} {reference['seconds']:7.3f} {1.0:8.2f} {0.0:8.3f} {0.0:9.3f} {0.0:8.3f}")
    for candidate in CANDIDATES:
        switch.use("reference" if candidate == "fused" else candidate)
        result = run(models["fused" if candidate == "fused" else "reference"])
        print(f"{candidate:<12} {result['seconds']:7.3f} {reference['seconds'] / result['seconds']:8.2f} "
              f"{ratio(result['text'], reference['text'], SINGLE):8.3f} "
              f"{ratio(result['velocity'], reference['velocity'], SINGLE):9.3f} "
              f"{ratio(result['final'], reference['final'], FINAL):8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
