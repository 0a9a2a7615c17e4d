"""The two ZipVoice-Distill stages' networks: teacher, student, EMA (recipe `training.loss:
distill-stage1 | distill-stage2`, `teacher:`), as the official `train_zipvoice_distill.py`.

    student, distillation, model_config, vocab = build_distillation(recipe, tokenizer, features)
    loss = distillation.loss(model, tokens, features, features_lens, generator=g)   # per step
    distillation.after_step(student)                                                # EMA (stage 2)

Stage 1 (`--distill-stage first`): the teacher is a trained ZipVoice (classifier-free guidance,
fixed); the ZipVoiceDistill student is built from the teacher's model.json and tokens and takes
every weight of the teacher (`init_student_from_teacher`; only its guidance-scale embedding keeps
its seeded initialisation). Stage 2 (`--distill-stage second`): `teacher` is the stage-1 result;
the student loads it strictly and the teacher is a copy of the student, then an exponential
moving average of it (`training.ema_decay`, official 0.9999) updated after every optimizer step.
The EMA teacher's weights are training state: `state_dict()` goes into every checkpoint so a
resumed run is bit-identical. The fixed stage-1 teacher is reloaded from its directory instead.

Every problem with the teacher (unreadable, wrong model family for the stage, another vocabulary
or feature size than the recipe's pipeline) is a ConfigError naming `teacher`, raised before the
first step.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.training.average import ema_update
from voxpipe.training.distill import (
    StudentStep,
    distillation_loss,
    init_student_from_teacher,
)
from voxpipe.training.recipe import DISTILL_VARIANT, TEACHER_VARIANTS, Recipe

STAGE_HINTS = {
    1: "stage 1 (distill-stage1) distils a trained, undistilled ZipVoice; its result is stage 2's teacher",
    2: "stage 2 (distill-stage2) continues from the stage-1 result, a zipvoice-distill model "
       "(the export/ of the distill-stage1 recipe)",
}


@dataclass
class Distillation:
    """The teacher of one stage and what a training step does with it."""

    stage: int
    teacher: nn.Module
    ema_decay: float
    _digest: str | None = field(default=None, init=False, repr=False)

    def loss(self, model: nn.Module, tokens, features: torch.Tensor, features_lens: torch.Tensor, *,
             generator: torch.Generator) -> torch.Tensor:
        """Scalar `distillation_loss` of one batch; `model` is `StudentStep(student)` or DDP of it.

        tokens: B token-id lists; features (B, T, F) already x feat_scale; features_lens (B,) frames."""
        return distillation_loss(model, self.teacher, tokens, features, features_lens, stage=self.stage,
                                 generator=generator)

    def objective(self, student: nn.Module) -> nn.Module:
        """The module DistributedDataParallel wraps (its forward is the student's step)."""
        return StudentStep(student)

    def after_step(self, student: nn.Module) -> None:
        """Stage 2: teacher = EMA of the student (after the optimizer step, as the official loop)."""
        if self.stage == 2:
            ema_update(student, self.teacher, self.ema_decay)

    def to(self, device: torch.device) -> Distillation:
        self.teacher.to(device)
        return self

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """Checkpoint state: the EMA teacher's weights (stage 2); None for the fixed stage-1 teacher."""
        return self.teacher.state_dict() if self.stage == 2 else None

    def digest(self) -> str | None:
        """Stage 1: sha256 of the fixed teacher's weights (names, dtypes, shapes, values), stored in
        checkpoints so a resume cannot silently switch teachers; None in stage 2 (its EMA teacher
        is training state, saved whole by `state_dict`)."""
        if self.stage != 1:
            return None
        if self._digest is None:  # the stage-1 teacher never changes: hash it once
            digest = hashlib.sha256()
            for name, tensor in sorted(self.teacher.state_dict().items()):
                digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            self._digest = digest.hexdigest()
        return self._digest

    def load_state_dict(self, state: dict[str, torch.Tensor] | None, source: str, digest: str | None = None) -> None:
        """Resume from a checkpoint's `teacher` state (stage 2) or check its `teacher_digest` (stage 1)."""
        if self.stage == 1:
            if digest is not None and digest != self.digest():
                raise ConfigError(f"{source}: written with another stage-1 teacher (its weights differ from the "
                                  "recipe's `teacher`); resume with the same teacher or start a new checkpoint.dir")
            return
        if state is None:
            raise ConfigError(f"{source}: the checkpoint has no EMA teacher; it was not written by a distill-stage2 "
                              "run (start a new checkpoint.dir)")
        self.teacher.load_state_dict(state)


def load_teacher(recipe: Recipe, tokenizer, features):
    """The teacher model of the recipe's stage, checked against the recipe's pipeline."""
    from voxpipe.plugins.zipvoice.loading import load_model

    stage, where = recipe.distill_stage, f"{recipe.source}: teacher"
    variant = TEACHER_VARIANTS[stage]
    try:
        loaded = load_model(recipe.teacher, variant)
    except WeightsError as error:
        raise ConfigError(f"{where}: {recipe.teacher} is not a {variant!r} model: {error} ({STAGE_HINTS[stage]})") from None
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    own = dict(getattr(tokenizer, "vocab", None) or {})
    if own and own != dict(loaded.vocab):
        raise ConfigError(f"{where}: its tokens.txt ({len(loaded.vocab)} tokens, {loaded.files['tokens']}) differs from "
                          f"the recipe tokenizer's vocabulary ({len(own)} tokens); distil with the teacher's tokenizer")
    if loaded.model.feature_dim != features.feature_dim:
        raise ConfigError(f"{where}: the teacher generates F={loaded.model.feature_dim} feature channels, "
                          f"synthesizer.features gives F={features.feature_dim}")
    if loaded.sample_rate != int(features.sample_rate):
        raise ConfigError(f"{where}: the teacher's features are at {loaded.sample_rate} Hz, synthesizer.features at "
                          f"{int(features.sample_rate)} Hz")
    return loaded


def build_distillation(recipe: Recipe, tokenizer, features) -> tuple[nn.Module, Distillation, dict[str, Any],
                                                                        dict[str, int]]:
    """(student, Distillation, model.json content, vocabulary) for the recipe's stage. The caller
    seeds torch first (the student's guidance embedding is initialised randomly in stage 1)."""
    from voxpipe.plugins.zipvoice.loading import model_kwargs, network_class

    loaded = load_teacher(recipe, tokenizer, features)
    if recipe.distill_stage == 1:
        kwargs = model_kwargs(DISTILL_VARIANT, loaded.config["model"], loaded.vocab, loaded.files["config"])
        student = network_class(DISTILL_VARIANT)(**kwargs)
        init_student_from_teacher(student, loaded.model)
        teacher = loaded.model
    else:
        student = loaded.model
        teacher = copy.deepcopy(student)
    teacher.to(torch.float32).eval().requires_grad_(False)
    distillation = Distillation(recipe.distill_stage, teacher, recipe.training.ema_decay)
    return student.to(torch.float32).train(), distillation, copy.deepcopy(loaded.config), dict(loaded.vocab)


__all__ = ["Distillation", "build_distillation", "load_teacher"]
