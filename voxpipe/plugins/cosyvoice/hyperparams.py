"""Official CosyVoice hyper-parameter files (`cosyvoice2.yaml`, `cosyvoice3.yaml`) read as DATA.

The official code loads these files with HyperPyYAML, which imports and calls every class path
named by a tag. Here the tags are parsed into plain values and never executed:

- `!new:path` / `!name:path` / `!apply:path` become `Tagged(tag, path, args)`; `path` must be one
  of `KNOWN_TARGETS` (the classes and functions the official CosyVoice 2/3 files name), else a
  `ConfigError` names the tag, the key and the file.
- `!ref <key>` is replaced by the value of that top-level key (`<a.b>` / `<a[b]>` go deeper);
  a reference inside an expression (`!ref <chunk_size> * <token_mel_ratio>`) is evaluated with
  + - * / // % on numbers only.
- Any other tag is a `ConfigError` naming the tag, the key and the file.

`read_hyperparams(file)` returns `CosyVoiceHyperParams`: typed configs (pydantic) of the sizes
each component needs (`lm`, `flow`, `hift`, `feat_extractor`), plus the resolved tree.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voxpipe.core.errors import ConfigError

MAX_FILE_BYTES = 1 << 20

# Class paths the official CosyVoice 2/3 files name, and what voxpipe makes of them. Nothing here
# is imported: "model" entries are read into typed configs, the others (training, data, seeds)
# are kept as inert data.
KNOWN_TARGETS: dict[str, str] = {
    "cosyvoice.llm.llm.Qwen2LM": "model",
    "cosyvoice.llm.llm.CosyVoice3LM": "model",
    "cosyvoice.llm.llm.Qwen2Encoder": "model",
    "cosyvoice.utils.common.ras_sampling": "model",
    "cosyvoice.utils.common.nucleus_sampling": "model",
    "cosyvoice.flow.flow.CausalMaskedDiffWithXvec": "model",
    "cosyvoice.flow.flow.CausalMaskedDiffWithDiT": "model",
    "cosyvoice.flow.flow.MaskedDiffWithXvec": "model",
    "cosyvoice.flow.length_regulator.InterpolateRegulator": "model",
    "cosyvoice.flow.flow_matching.CausalConditionalCFM": "model",
    "cosyvoice.flow.flow_matching.ConditionalCFM": "model",
    "cosyvoice.flow.decoder.CausalConditionalDecoder": "model",
    "cosyvoice.flow.decoder.ConditionalDecoder": "model",
    "cosyvoice.flow.DiT.dit.DiT": "model",
    "cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder": "model",
    "cosyvoice.transformer.upsample_encoder.PreLookaheadLayer": "model",
    "cosyvoice.transformer.encoder.ConformerEncoder": "model",
    "cosyvoice.transformer.encoder.TransformerEncoder": "model",
    "cosyvoice.hifigan.generator.HiFTGenerator": "model",
    "cosyvoice.hifigan.generator.CausalHiFTGenerator": "model",
    "cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor": "model",
    "cosyvoice.hifigan.f0_predictor.CausalConvRNNF0Predictor": "model",
    "omegaconf.DictConfig": "model",
    "matcha.utils.audio.mel_spectrogram": "model",
    "cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer": "model",
    "cosyvoice.tokenizer.tokenizer.get_tokenizer": "model",
    "whisper.tokenizer.get_tokenizer": "model",
    "cosyvoice.hifigan.hifigan.HiFiGan": "training",
    "cosyvoice.hifigan.discriminator.MultipleDiscriminator": "training",
    "cosyvoice.hifigan.discriminator.MultiResSpecDiscriminator": "training",
    "cosyvoice.hifigan.discriminator.MultiResolutionDiscriminator": "training",
    "matcha.hifigan.models.MultiPeriodDiscriminator": "training",
    **{f"cosyvoice.dataset.processor.{name}": "training" for name in (
        "parquet_opener", "tokenize", "filter", "resample", "truncate", "compute_fbank", "compute_whisper_fbank",
        "compute_f0", "parse_embedding", "shuffle", "sort", "batch", "padding")},
    "random.seed": "seed",
    "numpy.random.seed": "seed",
    "torch.manual_seed": "seed",
    "torch.cuda.manual_seed_all": "seed",
}

TAG_KINDS = ("new", "name", "apply")


@dataclass(frozen=True)
class Tagged:
    """A `!new:` / `!name:` / `!apply:` node: what it names and its (resolved) arguments."""

    tag: str
    target: str
    args: Any
    line: int = 0

    @property
    def class_name(self) -> str:
        return self.target.rsplit(".", 1)[-1]

    def kwargs(self) -> dict[str, Any]:
        return dict(self.args) if isinstance(self.args, dict) else {}


@dataclass(frozen=True)
class _Ref:
    expression: str
    line: int


@dataclass(frozen=True)
class _Unknown:
    tag: str
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps HyperPyYAML tags as inert markers."""


def _construct_tagged(kind: str):
    def construct(loader: _Loader, suffix: str, node: yaml.Node) -> Tagged:
        if isinstance(node, yaml.MappingNode):
            args: Any = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            args = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node)
            args = {} if value in ("", None) else [value]
        return Tagged(kind, suffix, args, node.start_mark.line + 1)

    return construct


def _construct_ref(loader: _Loader, node: yaml.Node) -> _Ref:
    return _Ref(str(loader.construct_scalar(node)), node.start_mark.line + 1)


def _construct_unknown(loader: _Loader, suffix: str, node: yaml.Node) -> _Unknown:
    return _Unknown("!" + suffix, node.start_mark.line + 1)


for _kind in TAG_KINDS:
    _Loader.add_multi_constructor(f"!{_kind}:", _construct_tagged(_kind))
_Loader.add_constructor("!ref", _construct_ref)
_Loader.add_multi_constructor("!", _construct_unknown)


# ---- typed configs -------------------------------------------------------------------------
class _Config(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SamplingConfig(_Config):
    """`ras_sampling`'s arguments (repetition-aware top-p/top-k)."""

    top_p: float = Field(0.8, gt=0, le=1)
    top_k: int = Field(25, ge=1)
    win_size: int = Field(10, ge=1)
    tau_r: float = Field(0.1, gt=0)


class LMConfig(_Config):
    """Sizes of the speech-token LM (`Qwen2LM` for CosyVoice2, `CosyVoice3LM` for CosyVoice3)."""

    variant: Literal["Qwen2LM", "CosyVoice3LM"]
    llm_input_size: int = Field(..., ge=1)
    llm_output_size: int = Field(..., ge=1)
    speech_token_size: int = Field(..., ge=1)
    sampling: SamplingConfig = SamplingConfig()


class MelConfig(_Config):
    """`matcha.utils.audio.mel_spectrogram` settings of the flow's mel (the prompt features)."""

    n_fft: int = Field(..., ge=1)
    num_mels: int = Field(..., ge=1)
    sampling_rate: int = Field(..., ge=1)
    hop_size: int = Field(..., ge=1)
    win_size: int = Field(..., ge=1)
    fmin: float = 0.0
    fmax: float | None = None
    center: bool = False


class FlowConfig(_Config):
    """The flow's interface sizes (part 1's flow module reads its full `args`)."""

    variant: str
    input_size: int
    output_size: int
    spk_embed_dim: int
    vocab_size: int
    input_frame_rate: int = 25
    token_mel_ratio: int = 2
    pre_lookahead_len: int = 3
    args: dict[str, Any] = Field(default_factory=dict)


class HiftConfig(_Config):
    """The HiFT vocoder's interface sizes (part 1's hift module reads its full `args`)."""

    variant: str
    in_channels: int
    sampling_rate: int
    upsample_rates: list[int]
    istft_n_fft: int
    istft_hop_len: int
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame (480 for CosyVoice2: 8 * 5 * 3 * 4)."""
        hop = self.istft_hop_len
        for rate in self.upsample_rates:
            hop *= rate
        return hop


@dataclass
class CosyVoiceHyperParams:
    """One official hyper-parameter file, resolved (nothing executed)."""

    file: Path
    tree: dict[str, Any]
    lm: LMConfig | None = None
    flow: FlowConfig | None = None
    hift: HiftConfig | None = None
    feat_extractor: MelConfig | None = None
    sample_rate: int | None = None
    token_frame_rate: int | None = None
    chunk_size: int | None = None
    tokenizer_version: str = "cosyvoice2"  # get_tokenizer's `version` (its special-token set)
    ignored: list[str] = field(default_factory=list)  # keys holding training/seed-only entries

    @property
    def version(self) -> str:
        """'cosyvoice3' when the LM is CosyVoice3LM or the flow CausalMaskedDiffWithDiT, else 'cosyvoice2'."""
        if (self.lm is not None and self.lm.variant == "CosyVoice3LM") or (
                self.flow is not None and self.flow.variant == "CausalMaskedDiffWithDiT"):
            return "cosyvoice3"
        return "cosyvoice2"

    def require(self, part: str):
        value = getattr(self, part)
        if value is None:
            raise ConfigError(f"{self.file}: no {part!r} section a voxpipe CosyVoice component can read")
        return value


# ---- reading ---------------------------------------------------------------------------------
def read_hyperparams(path: str | Path) -> CosyVoiceHyperParams:
    """Parse `path` (cosyvoice2.yaml / cosyvoice3.yaml) into typed configs; never executes it."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"CosyVoice hyper-parameter file not found: {file}")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{file} is larger than {MAX_FILE_BYTES} bytes; not a CosyVoice hyper-parameter file")
    return parse_hyperparams(file.read_text(encoding="utf-8"), file)


def parse_hyperparams(text: str, file: str | Path = "<string>") -> CosyVoiceHyperParams:
    file = Path(file)
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: a CosyVoice hyper-parameter file is a mapping, got {type(raw).__name__}")
    resolver = _Resolver(raw, file)
    tree = {key: resolver.resolve(value, str(key)) for key, value in raw.items()}
    params = CosyVoiceHyperParams(file=file, tree=tree, ignored=resolver.ignored)
    params.sample_rate = _int_or_none(tree.get("sample_rate"))
    params.token_frame_rate = _int_or_none(tree.get("token_frame_rate"))
    params.chunk_size = _int_or_none(tree.get("chunk_size"))
    _typed(params, "lm", "llm", _lm_config)
    _typed(params, "flow", "flow", _flow_config)
    _typed(params, "hift", "hift", _hift_config)
    _typed(params, "feat_extractor", "feat_extractor", _mel_config)
    params.tokenizer_version = _tokenizer_version(tree.get("get_tokenizer"), file)
    return params


TOKENIZER_VERSIONS = ("cosyvoice2", "cosyvoice3")


def _tokenizer_version(node: Any, file: Path) -> str:
    """`get_tokenizer: !name:...get_qwen_tokenizer {version: ...}` (official default cosyvoice2)."""
    if not isinstance(node, Tagged) or node.class_name != "get_qwen_tokenizer":
        return "cosyvoice2"
    version = node.kwargs().get("version", "cosyvoice2")
    if version not in TOKENIZER_VERSIONS:
        raise ConfigError(f"{file}: key 'get_tokenizer.version' is {version!r}; voxpipe knows "
                          f"{' and '.join(TOKENIZER_VERSIONS)}")
    return version


def read_official_entry(yaml_file: Path, key: str, class_name: str, implemented_by: str) -> Tagged:
    """The `key: !new:...class_name` entry of an official hyper-parameter file (read as data,
    never executed); a ConfigError names the file when it is missing or another class.
    `implemented_by` says which voxpipe component reads it (and for which CosyVoice versions)."""
    node = read_hyperparams(yaml_file).tree.get(key)
    if node is None or not hasattr(node, "kwargs"):
        raise ConfigError(f"{yaml_file}: no '{key}: !new:...{class_name}' entry")
    if node.class_name != class_name:
        raise ConfigError(f"{yaml_file}: {key} is {node.target}; {implemented_by} implements {class_name}")
    return node


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _typed(params: CosyVoiceHyperParams, attribute: str, key: str, build) -> None:
    node = params.tree.get(key)
    if node is None:
        return
    if not isinstance(node, Tagged):
        raise ConfigError(f"{params.file}: key {key!r} should be a !new:/!name: entry, got {type(node).__name__}")
    try:
        setattr(params, attribute, build(node))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise ConfigError(f"{params.file}: key {key!r} ({node.target}): {problems}") from None


def _lm_config(node: Tagged) -> LMConfig:
    args = node.kwargs()
    sampling = args.get("sampling")
    sampling_args = sampling.kwargs() if isinstance(sampling, Tagged) else {}
    if isinstance(sampling, Tagged) and sampling.class_name != "ras_sampling":
        raise ConfigError(f"key 'llm.sampling': only ras_sampling is implemented, got {sampling.target}")
    return LMConfig(variant=node.class_name, sampling=SamplingConfig(**sampling_args),
                    **{k: v for k, v in args.items() if k != "sampling"})


def _flow_config(node: Tagged) -> FlowConfig:
    args = node.kwargs()
    return FlowConfig(variant=node.class_name, args=args, **{k: v for k, v in args.items() if k != "args"})


def _hift_config(node: Tagged) -> HiftConfig:
    args = node.kwargs()
    istft = args.get("istft_params") or {}
    return HiftConfig(variant=node.class_name, in_channels=args.get("in_channels"),
                      sampling_rate=args.get("sampling_rate"), upsample_rates=args.get("upsample_rates"),
                      istft_n_fft=istft.get("n_fft"), istft_hop_len=istft.get("hop_len"), args=args)


def _mel_config(node: Tagged) -> MelConfig:
    return MelConfig(**node.kwargs())


class _Resolver:
    """Resolves `!ref`s and checks tags against `KNOWN_TARGETS`, remembering key paths for errors."""

    REF = re.compile(r"<([^<>]+)>")

    def __init__(self, raw: dict, file: Path) -> None:
        self.raw, self.file = raw, file
        self.ignored: list[str] = []
        self._resolving: set[str] = set()

    def resolve(self, value: Any, key: str) -> Any:
        if isinstance(value, _Unknown):
            raise ConfigError(f"{self.file}: unknown tag {value.tag!r} at key {key!r} (line {value.line}); "
                              f"CosyVoice files use !new:, !name:, !apply: and !ref")
        if isinstance(value, _Ref):
            return self._ref(value, key)
        if isinstance(value, Tagged):
            role = KNOWN_TARGETS.get(value.target)
            if role is None:
                raise ConfigError(f"{self.file}: unknown class path {value.target!r} in tag !{value.tag}: at key "
                                  f"{key!r} (line {value.line}); voxpipe reads the CosyVoice 2/3 classes only and "
                                  f"never imports a class named by a file")
            if value.tag == "apply" and role != "seed":
                raise ConfigError(f"{self.file}: !apply:{value.target} at key {key!r} would run code; only the "
                                  f"seed calls are accepted")
            if role != "model" and "." not in key and key not in self.ignored:
                self.ignored.append(key)
            return Tagged(value.tag, value.target, self.resolve(value.args, key), value.line)
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return value

    def _ref(self, ref: _Ref, key: str) -> Any:
        names = self.REF.findall(ref.expression)
        if not names:
            raise ConfigError(f"{self.file}: !ref {ref.expression!r} at key {key!r} (line {ref.line}) names no <key>")
        if self.REF.fullmatch(ref.expression.strip()):
            return self._lookup(names[0], key, ref)
        values = {}
        for index, name in enumerate(names):
            value = self._lookup(name, key, ref)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{self.file}: !ref {ref.expression!r} at key {key!r}: <{name}> is "
                                  f"{type(value).__name__}; expressions take numbers only")
            values[f"_v{index}"] = value
        counter = iter(range(len(names)))
        expression = self.REF.sub(lambda _: f"_v{next(counter)}", ref.expression)
        return _arithmetic(expression, values, f"{self.file}: !ref {ref.expression!r} at key {key!r}")

    def _lookup(self, name: str, key: str, ref: _Ref) -> Any:
        parts = [p for p in re.split(r"[.\[\]]", name.strip()) if p]
        if not parts or parts[0] not in self.raw:
            raise ConfigError(f"{self.file}: !ref <{name}> at key {key!r} (line {ref.line}): no such key")
        if name in self._resolving:
            raise ConfigError(f"{self.file}: !ref <{name}> at key {key!r} refers to itself")
        self._resolving.add(name)
        try:
            value = self.resolve(self.raw[parts[0]], parts[0])
        finally:
            self._resolving.discard(name)
        for part in parts[1:]:
            inner = value.kwargs() if isinstance(value, Tagged) else value
            if not isinstance(inner, dict) or part not in inner:
                raise ConfigError(f"{self.file}: !ref <{name}> at key {key!r} (line {ref.line}): no such key")
            value = inner[part]
        return value


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _arithmetic(expression: str, values: dict[str, float], where: str) -> float:
    """+ - * / // % over numbers and the referenced values; anything else is refused."""

    def evaluate(node: ast.AST):
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](evaluate(node.left), evaluate(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id]
        raise ConfigError(f"{where}: only arithmetic on numbers is supported")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ConfigError(f"{where}: not an arithmetic expression") from None
    return evaluate(tree)
