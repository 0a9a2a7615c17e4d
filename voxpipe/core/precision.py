"""`--precision {auto,fp32,bf16,int8}` / `--backend {torch,onnx}`: which arithmetic a family's model runs.

A choice becomes ordinary config overrides of the family's precision component (so it is
validated, shown by `voxpipe config show` and reproducible): the sub-component the family names
in `Synthesizer.precision_component` (the flow-matching families' `acoustic_model`, StyleTTS2 /
Kokoro's `decoder`), using only what that component's Params declare — no plugin is imported here:

  dtype: Literal[..."float32", "bfloat16"]     torch models: fp32 / bf16
  precision: Literal["fp32", "int8"]           onnxruntime models: fp32 / int8 graphs
  kernels: Literal["reference", "fused"]       torch Zipformer: the fused fast path

and, where the family's vocoder declares them too, the vocoder's `kernels` (fused: its float32
Linear layers on oneDNN; reference with an explicit fp32, fused otherwise) and `dtype` (its body
in bfloat16 when the model is, its spectrum heads float32).

fp32 is the parity path (reference kernels, bit-identical to the official code). auto is the
fastest path that meets the quality bound on the CPU at hand: bf16 only where the CPU has native
bf16 (AVX-512 BF16 / AMX; emulated bf16 was 10x slower than fp32 on an AVX2 Zen 2), otherwise
fp32, with the kernels AUTO_KERNELS names where the model has a choice (the deviations of the
fused kernels and of bf16 from the reference are bounded in tests/test_precision.py). int8 is
never chosen automatically: it is opt-in, and only models with int8 graphs (the onnxruntime
backend) offer it. The commands use auto when no flag is given and the config does not set the
arithmetic itself (`default_overrides`); the Python API takes the config as written unless given
`Pipeline.from_config(..., precision=, backend=)`.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

from voxpipe.core.cpu import CpuInfo, detect
from voxpipe.core.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "int8")
BACKENDS = ("torch", "onnx")
_DTYPE_OF = {"fp32": "float32", "bf16": "bfloat16"}
VOCODER_KEY = "synthesizer.vocoder"
# Kernels `auto` and `bf16` ask for where a model has a choice (an explicit fp32 keeps the bit-exact
# reference). Side by side on full-size LuxTTS (docs/performance.md) the fused kernels were never
# slower: 1.01x on an AVX2 Zen 1, 1.12x (fp32) and 1.09x (bf16) on an AVX-512 BF16 Zen 4, 1.75-1.81x
# (fp32) and 1.21-1.65x (bf16) on a Zen 5 (whole synthesis, vocoder included); their
# deviation from the reference is bounded in tests/test_precision.py.
AUTO_KERNELS = "fused"
# The acoustic-model settings a precision choice writes; a config that sets any of them is taken as
# written when no --precision flag is given.
PRECISION_KEYS = ("dtype", "precision", "kernels")


def _literal_values(params: type, name: str) -> tuple:
    field = params.model_fields.get(name)
    if field is None:
        return ()
    return tuple(typing.get_args(field.annotation))


def component_backend(cls: type) -> str:
    """onnx for onnxruntime components (they take session thread counts), else torch."""
    return "onnx" if "intra_op_threads" in cls.Params.model_fields else "torch"


def supported_precisions(cls: type) -> tuple[str, ...]:
    """The precisions a component's Params can express, in PRECISIONS order."""
    dtypes = _literal_values(cls.Params, "dtype")
    if dtypes:
        return tuple(p for p, dtype in _DTYPE_OF.items() if dtype in dtypes)
    precisions = _literal_values(cls.Params, "precision")
    if precisions:
        return tuple(p for p in PRECISIONS if p in precisions)
    return ("fp32",)


def has_fused_kernels(cls: type) -> bool:
    return "fused" in _literal_values(cls.Params, "kernels")


def choose_precision(requested: str, supported: Sequence[str], cpu: CpuInfo, where: str = "acoustic model",
                     key: str = "synthesizer.acoustic_model", exportable: bool = True) -> str:
    """The concrete precision for `requested` (auto resolved), or a ConfigError saying why not.
    `exportable`: the component has an ONNX export (`voxpipe export onnx`), the way to int8."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision {requested!r} is not one of {', '.join(PRECISIONS)}")
    if requested == "auto":
        return "bf16" if cpu.has_bf16 and "bf16" in supported else "fp32"
    if requested not in supported:
        hint = ""
        if requested == "int8" and exportable:
            hint = (" int8 needs int8 graphs: `voxpipe export onnx CONFIG -o DIR --int8`, then use "
                    "DIR/pipeline_int8.yaml (backend onnx)")
        raise ConfigError(f"precision {requested!r} is not available for {where} (it offers "
                          f"{', '.join(supported)}).{hint}")
    if requested == "bf16" and not cpu.has_bf16:
        raise ConfigError(
            f"precision 'bf16' needs native bf16 arithmetic (avx512_bf16 or amx_bf16), which this CPU "
            f"({cpu.model}) lacks: torch would emulate it, 10x slower than fp32 on an AVX2 machine. Use "
            f"--precision fp32 or auto (or set {key}.dtype=bfloat16 in the config to force it).")
    return requested


def precision_overrides(cls: type, precision: str, kernels: str | None) -> dict[str, str]:
    """Params values of component class `cls` that select `precision` (concrete) and `kernels`."""
    values: dict[str, str] = {}
    if _literal_values(cls.Params, "dtype"):
        values["dtype"] = _DTYPE_OF[precision]
    elif _literal_values(cls.Params, "precision"):
        values["precision"] = precision
    if kernels is not None and has_fused_kernels(cls):
        values["kernels"] = kernels
    return values


def precision_component(family) -> tuple[str, object | None]:
    """(config key, validated child config or None) of the sub-component that takes the precision
    choice in a validated family config (`Synthesizer.precision_component`)."""
    name = getattr(family.info.cls, "precision_component", "acoustic_model")
    return f"synthesizer.{name}", family.children.get(name)


def resolve(config, precision: str | None, backend: str | None, cpu: CpuInfo | None = None) -> tuple[list[str], str]:
    """(`KEY=VALUE` overrides, description) realizing the choice on a validated PipelineConfig.

    A backend different from the config's is an error naming the way to get there (exported
    graphs are files the torch config does not have).
    """
    cpu = cpu or detect()
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    family = config.components["synthesizer"]
    key, acoustic = precision_component(family)
    if acoustic is None:
        if precision in (None, "auto", "fp32") and backend in (None, "torch"):
            return [], f"{family.info.name}: as built (no precision or backend choice)"
        raise ConfigError(f"synthesizer {family.info.name!r} has no precision or backend choice (no {key}; "
                          f"it runs as built)")
    cls, name = acoustic.info.cls, acoustic.info.name
    role = key.split(".")[-1].replace("_", " ")  # "acoustic model", "decoder"
    current = component_backend(cls)
    exportable = getattr(cls, "onnx_counterpart", None) is not None
    if backend is not None and backend != current:
        if backend == "torch":
            how = "use the torch pipeline the graphs were exported from"
        elif exportable:
            how = "export it first: `voxpipe export onnx CONFIG -o DIR [--int8]`, then use DIR/pipeline.yaml"
        else:
            how = "voxpipe has no ONNX export of it"
        raise ConfigError(f"backend {backend!r}: this pipeline's {role} {name!r} runs on {current}; {how}")
    if precision is None:
        return [], f"{name}: as configured ({current})"
    chosen = choose_precision(precision, supported_precisions(cls), cpu, where=f"{role} {name!r} ({current})", key=key,
                              exportable=exportable)
    kernels = None
    if has_fused_kernels(cls):
        kernels = AUTO_KERNELS if chosen == "bf16" or precision == "auto" else "reference"
    values = precision_overrides(cls, chosen, kernels)
    overrides = [f"{key}.{field}={value}" for field, value in values.items()]
    label = f"{name}: {chosen} on {current}" + (f", {kernels} kernels" if kernels else "")
    if precision == "auto":
        label += f" (auto on {cpu.vector_level}{', native bf16' if cpu.has_bf16 else ''})"
    vocoder = family.children.get("vocoder")
    if vocoder is not None and has_fused_kernels(vocoder.info.cls):
        vocoder_kernels = "reference" if precision == "fp32" else AUTO_KERNELS
        overrides.append(f"{VOCODER_KEY}.kernels={vocoder_kernels}")
        label += f"; vocoder {vocoder.info.name}: {vocoder_kernels} kernels"
        if "bf16" in supported_precisions(vocoder.info.cls):  # its body follows the model's bf16
            vocoder_dtype = _DTYPE_OF["bf16" if chosen == "bf16" else "fp32"]
            overrides.append(f"{VOCODER_KEY}.dtype={vocoder_dtype}")
            label += f", {vocoder_dtype}"
    return overrides, label


def default_overrides(config, cpu: CpuInfo | None = None) -> tuple[list[str], str]:
    """What the commands (synth, voice create, batch, serve) apply without --precision/--backend: `auto`,
    unless the config already says which arithmetic to use (it sets dtype, precision or kernels of
    its precision component, in the YAML or by --set): then it is taken as written. The Python API
    (`Pipeline.from_config`) takes the config as written unless given `precision=`."""
    _, acoustic = precision_component(config.components["synthesizer"])
    if acoustic is None or set(PRECISION_KEYS) & acoustic.params.model_fields_set:
        return resolve(config, None, None, cpu)  # no overrides; the label says what runs
    return resolve(config, "auto", None, cpu)
