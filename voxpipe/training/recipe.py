"""Training recipes: a pipeline YAML plus what training needs, validated before any heavy work.

A recipe file is the pipeline being trained (its top-level components and `settings`, checked by
`voxpipe.core.config.build_config` exactly as `voxpipe synth` checks them) plus these sections:

  model:      constructor arguments of the acoustic network (model.json's "model" object), for
              training from scratch; left out when `init_from` gives a checkpoint.
  init_from:  null (from scratch), "pipeline" (the weights `synthesizer.acoustic_model.weights`
              names, e.g. hf://k2-fsa/ZipVoice/zipvoice) or a local directory in the official
              layout (model.pt or model.safetensors, model.json, tokens.txt); "teacher" (the
              default, and the only choice, of the distillation losses): start from `teacher`.
  teacher:    distillation only (training.loss distill-stage1 / distill-stage2): the model
              directory (official layout, or hf://) of the teacher: stage 1 a trained ZipVoice,
              stage 2 the stage-1 ZipVoice-Distill result (its EMA teacher starts as a copy).
  freeze:     names of the network's modules kept fixed (`embed`, `text_encoder`, `fm_decoder`,
              or dotted paths below them).
  data:       the manifests `voxpipe data prepare` wrote, and the batch sampler.
  optim:      optimizer (by name) and gradient clipping.
  schedule:   learning-rate schedule (by name).
  checkpoint: where and how often to write checkpoints, model averaging.
  training:   steps, seed, precision, device, loss options, logging.

`synthesizer.acoustic_model.weights` may be left out: it is then the directory the trained model
is exported to (`<checkpoint.dir>/export`), so the resolved pipeline is the exported one.
Every error names the file, the key path, the value and what was expected (with close matches).
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voxpipe.core.config import (
    FAMILY_KIND,
    SETTINGS_KEY,
    PipelineConfig,
    _unknown_key_message,
    _validation_message,
    build_config,
    read_yaml,
)
from voxpipe.core.errors import ConfigError
from voxpipe.registry import Registry, get_registry

EXPORT_DIR = "export"
"""Sub-directory of `checkpoint.dir` holding the exported model (official layout)."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(Section):
    train: str = Field(description="CutSet manifest (cuts.jsonl.gz) written by `voxpipe data prepare`")
    max_duration: float = Field(200.0, gt=0, description="seconds of audio per batch and process")
    num_buckets: int = Field(10, ge=1, description="duration buckets of lhotse's DynamicBucketingSampler")
    shuffle: bool = True
    drop_last: bool = Field(False, description="drop each epoch's last, incomplete batches")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes loading features")


class OptimSection(Section):
    type: Literal["scaled-adam", "adamw"] = Field("scaled-adam", description="ScaledAdam as ZipVoice, or torch AdamW")
    lr: float = Field(0.02, gt=0, description="base learning rate (ZipVoice: 0.02 with ScaledAdam)")
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = Field(0.0, ge=0)
    clipping_scale: float = Field(2.0, gt=0, description="ScaledAdam's gradient clipping (x median norm)")
    clip_grad_norm: float | None = Field(None, gt=0, description="clip the global gradient norm (AdamW); "
                                         "null = none (ScaledAdam clips itself)")


class ScheduleSection(Section):
    type: Literal["eden", "constant"] = Field("eden", description="Eden as ZipVoice, or a warmed-up constant")
    lr_batches: float = Field(7500, gt=0, description="Eden: batches over which the rate decays")
    lr_epochs: float = Field(10, gt=0, description="Eden: epochs (or hours, see lr_hours) over which it decays")
    lr_hours: float = Field(0, ge=0, description="> 0: Eden's epoch counter is hours of audio seen / this")
    warmup_batches: float = Field(500, ge=0, description="batches of linear warm-up")


class CheckpointSection(Section):
    dir: str = Field(description="directory of checkpoints, TensorBoard logs and the export")
    every_steps: int = Field(500, ge=1, description="write a checkpoint every this many optimizer steps")
    keep_last: int = Field(3, ge=1, description="checkpoints kept (older ones are deleted)")
    average_period: int = Field(200, ge=0, description="steps between model-average updates (0 = no average)")
    export_averaged: bool = Field(True, description="export the averaged model when there is one")
    export_average_steps: int | None = Field(
        None, ge=1, description="export the mean model over (about) the last this many steps, from the running "
        "averages of the last and an earlier kept checkpoint, as the official iter-N-avg-K; None: since the oldest "
        "kept checkpoint (keep_last x every_steps). Without an earlier checkpoint: the average since step 0")


class TrainingSection(Section):
    max_steps: int = Field(description="optimizer steps to train for (counted across resumes)", ge=1)
    max_epochs: int | None = Field(None, ge=1, description="stop earlier after this many epochs")
    seed: int = 42
    device: str = Field("auto", description="auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="autocast dtype (fp16: with a grad scaler)")
    loss: Literal["flow-matching", "distill-stage1", "distill-stage2"] = Field(
        "flow-matching", description="flow-matching (train_zipvoice.py) or a ZipVoice-Distill stage "
        "(train_zipvoice_distill.py --distill-stage first / second; needs `teacher`)")
    ema_decay: float = Field(0.9999, ge=0, le=1, description="distill-stage2: EMA teacher = teacher x decay + "
                             "student x (1 - decay) after every step (official --ema-decay)")
    condition_drop_ratio: float = Field(0.2, ge=0, le=1, description="text-condition dropout (ZipVoice: 0.2)")
    feat_scale: float | None = Field(None, gt=0, description="features x this before the loss (None = the acoustic "
                                     "model's feat_scale, 0.1 for ZipVoice)")
    log_every: int = Field(10, ge=1, description="steps between log lines / TensorBoard points")
    progress: bool = Field(True, description="show a progress bar on rank 0")
    tensorboard: bool = Field(True, description="write TensorBoard logs under <checkpoint.dir>/tensorboard")
    regularize: bool = Field(True, description="the Zipformer's official training-time regularisers (scheduled "
                             "dropout and skipping, Balancer, Whiten, parameter limits; voxpipe/plugins/zipvoice/"
                             "regularizers.py); false = the exact network (the loss-parity setting)")


SECTIONS: dict[str, type[Section]] = {
    "data": DataSection,
    "optim": OptimSection,
    "schedule": ScheduleSection,
    "checkpoint": CheckpointSection,
    "training": TrainingSection,
}
OTHER_KEYS = ("model", "init_from", "freeze", "teacher")
DISTILL_STAGES = {"distill-stage1": 1, "distill-stage2": 2}
"""training.loss values of the two ZipVoice-Distill stages -> stage number."""
DISTILL_VARIANT = "zipvoice-distill"
TEACHER_VARIANTS = {1: "zipvoice", 2: DISTILL_VARIANT}
"""Model family the teacher of each distillation stage must be."""
INIT_FROM_TEACHER = "teacher"
RECIPE_KEYS = (*SECTIONS, *OTHER_KEYS)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: the pipeline being trained and the training sections."""

    source: str
    pipeline: PipelineConfig
    data: DataSection
    optim: OptimSection
    schedule: ScheduleSection
    checkpoint: CheckpointSection
    training: TrainingSection
    model: dict[str, Any] | None
    init_from: str | None
    freeze: tuple[str, ...]
    teacher: str | None = None

    @property
    def distill_stage(self) -> int | None:
        """1 or 2 for the ZipVoice-Distill losses, None for flow matching."""
        return DISTILL_STAGES.get(self.training.loss)

    @property
    def directory(self) -> Path:
        return Path(self.checkpoint.dir)

    @property
    def export_dir(self) -> Path:
        return self.directory / EXPORT_DIR

    @property
    def acoustic_model(self):
        """The ComponentConfig of `synthesizer.acoustic_model`."""
        return self.pipeline.components[FAMILY_KIND].children["acoustic_model"]


def load_recipe(source: str | Path | dict[str, Any], overrides=(), *, registry: Registry | None = None) -> Recipe:
    """Read and validate a recipe file (or mapping); relative paths are relative to the file."""
    registry = registry or get_registry()
    if isinstance(source, dict):
        name, data, base = "<dict>", copy.deepcopy(source), Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"recipe file not found: {path}")
        name, data, base = str(path), read_yaml(path), path.resolve().parent
    data = _apply_overrides(data, overrides, name)
    allowed = (*registry.top_level_kinds(), SETTINGS_KEY, *RECIPE_KEYS)
    for key in data:
        if key not in allowed:
            raise ConfigError(_unknown_key_message(name, key, allowed, "top level"))
    sections = {}
    for key, model in SECTIONS.items():
        value = data.get(key)
        if value is None and any(f.is_required() for f in model.model_fields.values()):
            raise ConfigError(f"{name}: missing required section {key!r} (keys: {', '.join(model.model_fields)})")
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name}: {key}: expected a mapping, got {type(value).__name__}")
        try:
            sections[key] = model.model_validate(value or {})
        except ValidationError as error:
            raise ConfigError(_validation_message(name, key, error, model, f"recipe section {key!r}")) from None
    checkpoint = sections["checkpoint"].model_copy(update={"dir": _relative_to(base, sections["checkpoint"].dir)})
    data_section = sections["data"].model_copy(update={"train": _relative_to(base, sections["data"].train)})
    training = sections["training"]
    if "ema_decay" in training.model_fields_set and training.loss != "distill-stage2":
        raise ConfigError(f"{name}: training.ema_decay: only training.loss distill-stage2 uses it (its EMA teacher); "
                          f"this recipe's loss is {training.loss}: remove ema_decay")
    teacher = _check_teacher(name, data, base, training.loss)
    init_from, model, freeze = _check_init(name, data, base, teacher is not None)
    pipeline = _pipeline(name, data, Path(checkpoint.dir) / EXPORT_DIR, init_from, registry)
    _check_distill_pipeline(name, pipeline, sections["training"].loss)
    return Recipe(name, pipeline, data_section, sections["optim"], sections["schedule"], checkpoint,
                  sections["training"], model, init_from, freeze, teacher)


def _apply_overrides(data: dict[str, Any], overrides, name: str) -> dict[str, Any]:
    """`training.max_steps=10`-style overrides of recipe sections; the rest go to the pipeline's
    own override machinery (they keep its shorthands)."""
    from voxpipe.core.config import apply_overrides, parse_override

    pipeline_overrides = []
    for text in overrides:
        path, value = parse_override(text)
        if path[0] in RECIPE_KEYS:
            node = data
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{name}: override {text!r}: {part} is not a mapping")
            node[path[-1]] = value
        else:
            pipeline_overrides.append(text)
    return apply_overrides(data, pipeline_overrides, name) if pipeline_overrides else data


def _relative_to(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


TEACHER_FILES = {"model.json": ("model.json", "config.json"), "tokens.txt": ("tokens.txt",),
                 "model.pt": ("model.safetensors", "model.pt")}


def _check_teacher(name: str, data: dict[str, Any], base: Path, loss: str) -> str | None:
    """The `teacher` entry: required by the distillation losses, refused otherwise; a local
    directory must hold the official layout (the model itself is checked when training starts)."""
    teacher, stage = data.get("teacher"), DISTILL_STAGES.get(loss)
    if stage is None:
        if teacher is not None:
            raise ConfigError(f"{name}: teacher: only the distillation losses use a teacher (training.loss: "
                              f"{' or '.join(DISTILL_STAGES)}); training.loss is {loss!r}")
        return None
    wanted = ("a trained ZipVoice model directory (e.g. the export/ of a flow-matching recipe)" if stage == 1 else
              "the stage-1 result: the export/ directory of the distill-stage1 recipe")
    if teacher is None:
        raise ConfigError(f"{name}: teacher: training.loss {loss} needs a 'teacher': {wanted}")
    if not isinstance(teacher, str):
        raise ConfigError(f"{name}: teacher: expected {wanted}, got {teacher!r}")
    if teacher.startswith("hf://"):
        return teacher
    directory = Path(_relative_to(base, teacher))
    if not directory.is_dir():
        raise ConfigError(f"{name}: teacher: {teacher!r} ({directory}) is not a directory; expected {wanted}")
    missing = [label for label, names in TEACHER_FILES.items() if not any((directory / n).is_file() for n in names)]
    if missing:
        raise ConfigError(f"{name}: teacher: {directory} lacks {', '.join(missing)}; expected {wanted} "
                          "(model.pt or model.safetensors, model.json, tokens.txt)")
    return str(directory)


def _check_distill_pipeline(name: str, pipeline: PipelineConfig, loss: str) -> None:
    """A distillation recipe trains (and exports) a ZipVoice-Distill model run with distilled guidance."""
    family = pipeline.components[FAMILY_KIND].children
    variant = family["acoustic_model"].info.name
    if loss not in DISTILL_STAGES:
        if variant == DISTILL_VARIANT:
            raise ConfigError(f"{name}: {FAMILY_KIND}.acoustic_model.type {variant!r} is trained by distillation: "
                              f"set training.loss to {' or '.join(DISTILL_STAGES)} (and a teacher)")
        return
    if variant != DISTILL_VARIANT:
        raise ConfigError(f"{name}: {FAMILY_KIND}.acoustic_model.type: training.loss {loss} trains a "
                          f"{DISTILL_VARIANT!r} student, got {variant!r}")
    guidance = family.get("guidance")
    if guidance is None or guidance.info.name != "distilled":
        got = "none" if guidance is None else guidance.info.name
        raise ConfigError(f"{name}: {FAMILY_KIND}.guidance.type: a distilled model takes the guidance scale as input; "
                          f"use {{type: distilled, scale: 3.0}} (got {got!r})")


def _check_init(name: str, data: dict[str, Any], base: Path,
                distilling: bool) -> tuple[str | None, dict | None, tuple[str, ...]]:
    init_from, model, freeze = data.get("init_from"), data.get("model"), data.get("freeze") or []
    if distilling:
        if init_from not in (None, INIT_FROM_TEACHER):
            raise ConfigError(f"{name}: init_from: a distillation student starts from its teacher; set init_from: "
                              f"{INIT_FROM_TEACHER} (or leave it out), got {init_from!r}")
        if model is not None:
            raise ConfigError(f"{name}: model: the student's architecture is the teacher's; remove 'model'")
        init_from = INIT_FROM_TEACHER
    elif init_from == INIT_FROM_TEACHER:
        raise ConfigError(f"{name}: init_from: 'teacher' is for the distillation losses (training.loss: "
                          f"{' or '.join(DISTILL_STAGES)})")
    if init_from is not None and not isinstance(init_from, str):
        raise ConfigError(f"{name}: init_from: expected null, 'pipeline' or a model directory, got {init_from!r}")
    if init_from not in (None, "pipeline", INIT_FROM_TEACHER):
        directory = Path(_relative_to(base, init_from))
        if not directory.is_dir():
            raise ConfigError(f"{name}: init_from: {init_from!r} is not a directory (expected null, 'pipeline' or a "
                              "model directory in the official layout: model.pt, model.json, tokens.txt)")
        init_from = str(directory)
    if model is not None and not isinstance(model, dict):
        raise ConfigError(f"{name}: model: expected a mapping of network constructor arguments, got {type(model).__name__}")
    if init_from is None and model is None:
        raise ConfigError(f"{name}: training from scratch (init_from: null) needs a 'model' section with the "
                          "network's constructor arguments (model.json's \"model\" object)")
    if init_from is not None and model is not None:
        raise ConfigError(f"{name}: model: the architecture comes from init_from {init_from!r}; "
                          "remove 'model' or set init_from: null")
    if not isinstance(freeze, list) or not all(isinstance(item, str) for item in freeze):
        raise ConfigError(f"{name}: freeze: expected a list of module names (e.g. [text_encoder]), got {freeze!r}")
    return init_from, model, tuple(freeze)


def _pipeline(name: str, data: dict[str, Any], export_dir: Path, init_from: str | None,
              registry: Registry) -> PipelineConfig:
    """The pipeline part, validated by the pipeline machinery. A left-out acoustic-model
    `weights` becomes the export directory."""
    pipeline = {key: copy.deepcopy(value) for key, value in data.items() if key not in RECIPE_KEYS}
    family = pipeline.get(FAMILY_KIND)
    acoustic = family.get("acoustic_model") if isinstance(family, dict) else None
    if isinstance(acoustic, str):
        acoustic = family["acoustic_model"] = {"type": acoustic}
    if not isinstance(acoustic, dict):
        raise ConfigError(f"{name}: {FAMILY_KIND}.acoustic_model: a recipe trains an acoustic model; "
                          "add one, e.g. {type: zipvoice}")
    if init_from == "pipeline" and "weights" not in acoustic:
        raise ConfigError(f"{name}: init_from: 'pipeline' loads {FAMILY_KIND}.acoustic_model.weights, which is not set")
    acoustic.setdefault("weights", str(export_dir))
    try:
        config = build_config(pipeline, registry=registry)
    except ConfigError as error:
        raise type(error)(str(error).replace("<dict>", name)) from None
    config.source = name
    network = getattr(config.components[FAMILY_KIND].children["acoustic_model"].info.cls, "network", None)
    if network is None:
        raise ConfigError(f"{name}: {FAMILY_KIND}.acoustic_model.type {acoustic.get('type')!r} has no trainable torch "
                          "network (`network` attribute); trainable types: "
                          + ", ".join(n for n in registry.names("acoustic_model")
                                      if getattr(registry.get("acoustic_model", n).cls, "network", None)))
    return config


def check_freeze(recipe: Recipe, module) -> None:
    """ConfigError naming an unknown `freeze` entry and the module names there are."""
    names = [name for name, _ in module.named_modules() if name]
    for entry in recipe.freeze:
        if entry not in names:
            top = [name for name in names if "." not in name]
            close = difflib.get_close_matches(entry, names, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"{recipe.source}: freeze: unknown module {entry!r}{hint} Top-level modules: "
                              f"{', '.join(top)}")

