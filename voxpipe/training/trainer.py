"""The training loop behind `voxpipe train RECIPE.yaml`: one process, or N under `torchrun`.

Distributed runs use the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT): `torchrun --nproc_per_node 2 -m voxpipe train RECIPE.yaml` (or `voxpipe`'s console
script given to torchrun) trains with DistributedDataParallel, gloo on CPU, nccl on GPU; across
nodes add torchrun's `--nnodes/--node_rank/--rdzv_endpoint`. Each process takes its own batches
from lhotse's DynamicBucketingSampler (rank, world_size); an epoch ends for all processes when
one of them runs out of batches.

Order of one step (the same in every run, so a resumed run repeats an uninterrupted one bit for
bit on CPU): next batch -> features x feat_scale -> loss (noise, time, span mask, text dropout
drawn from the run's own torch.Generator) under autocast -> backward -> clip -> optimizer step ->
scheduler.step_batch(step) -> (distill-stage2: EMA teacher update) -> model average -> log -> checkpoint.

`training.loss` picks the objective: flow matching (`loss.py`), or one of the two ZipVoice-Distill
stages (`distill.py` losses, teacher and student from `teacher.py`; the student is the network
trained, checkpointed and exported).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from voxpipe.core.errors import CompatibilityError, ConfigError
from voxpipe.core.files import write_text_atomically
from voxpipe.training import regularization
from voxpipe.training.average import (
    average_between,
    new_averaged_model,
    update_averaged_model,
)
from voxpipe.training.checkpointing import (
    checkpoint_path,
    checkpoint_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from voxpipe.training.recipe import Recipe, check_freeze

PIPELINE_FILE = "pipeline.yaml"
PAD_TOKEN = "_"


# ---- processes -----------------------------------------------------------------------------------
@dataclass
class Distributed:
    """This process's place in the run (rank 0 of 1 when not under torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> Distributed:
    """Join the process group torchrun describes in the environment (or run alone)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local_rank}"
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"training.device: {device!r} is not a torch device ({error})") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"training.device: {device!r} but torch sees no CUDA device")
        torch.cuda.set_device(chosen)
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, chosen)


def _all_true(flag: bool, context: Distributed) -> bool:
    """True when `flag` holds in every process."""
    if not context.active:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=context.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value.item())


def _sum(values: list[float], context: Distributed) -> list[float]:
    if not context.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


# ---- building ------------------------------------------------------------------------------------
def build_network(recipe: Recipe, tokenizer, features) -> tuple[torch.nn.Module, dict[str, Any], dict[str, int]]:
    """(network, model.json content, vocabulary): fresh from `model` (seeded by the caller), or
    loaded from `init_from` as a pipeline loads it."""
    from voxpipe.plugins.zipvoice.loading import load_model, model_kwargs

    acoustic = recipe.acoustic_model
    variant = acoustic.info.name
    if recipe.init_from is None:
        vocab = dict(getattr(tokenizer, "vocab", None) or {})
        if not vocab:
            raise ConfigError(f"{recipe.source}: tokenizer {type(tokenizer).name!r} has no vocabulary (tokens.txt); "
                              "a model trained from scratch takes its vocabulary from it")
        model_config = {"model": dict(recipe.model),
                        "feature": {"type": "vocos", "sampling_rate": int(features.sample_rate)}}
        kwargs = model_kwargs(variant, recipe.model, vocab, Path(f"{recipe.source}: model"))
        try:
            network = acoustic.info.cls.network(**kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{recipe.source}: model: cannot build {variant!r}: {error}") from None
    else:
        params = acoustic.params
        from_pipeline = recipe.init_from == "pipeline"
        loaded = load_model(params.weights if from_pipeline else recipe.init_from, variant,
                            checkpoint=params.checkpoint if from_pipeline else None,
                            config=params.config if from_pipeline else None,
                            tokens=params.tokens if from_pipeline else None)
        network, model_config, vocab = loaded.model, loaded.config, loaded.vocab
        own = getattr(tokenizer, "vocab", None)
        if own and dict(own) != dict(vocab):
            raise CompatibilityError(f"{recipe.source}: the tokenizer's vocabulary ({len(own)} tokens) differs from "
                                     f"the tokens.txt of init_from ({len(vocab)} tokens, {loaded.files['tokens']})")
    if network.feature_dim != features.feature_dim:
        raise CompatibilityError(f"{recipe.source}: synthesizer.features gives F={features.feature_dim} channels, "
                                 f"the {variant!r} network takes F={network.feature_dim}")
    return network.to(torch.float32).train(), model_config, vocab


def freeze_modules(recipe: Recipe, network: torch.nn.Module) -> int:
    """requires_grad=False on the recipe's `freeze` modules; returns the trainable parameter count."""
    check_freeze(recipe, network)
    modules = dict(network.named_modules())
    for name in recipe.freeze:
        for parameter in modules[name].parameters():
            parameter.requires_grad_(False)
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def build_optimizer(recipe: Recipe, network: torch.nn.Module):
    settings = recipe.optim
    named = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError(f"{recipe.source}: freeze: every parameter is frozen; nothing to train")
    if settings.type == "adamw":
        return torch.optim.AdamW([p for _, p in named], lr=settings.lr, betas=settings.betas,
                                 weight_decay=settings.weight_decay)
    from voxpipe.training.optim import ScaledAdam

    return ScaledAdam(named, lr=settings.lr, betas=settings.betas, clipping_scale=settings.clipping_scale)


class ConstantSchedule:
    """The learning rate ramps linearly from 0.5x to 1x over `warmup_batches`, then stays
    (Eden's warm-up without its decay); the same step_batch/step_epoch interface as Eden."""

    def __init__(self, optimizer, warmup_batches: float) -> None:
        self.optimizer, self.warmup_batches = optimizer, warmup_batches
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.batch = 0
        self._apply()

    def step_batch(self, batch: int) -> None:
        self.batch = batch
        self._apply()

    def step_epoch(self, epoch: float) -> None:
        pass

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "base_lrs": self.base_lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch, self.base_lrs = state["batch"], list(state["base_lrs"])
        self._apply()

    def _apply(self) -> None:
        factor = 1.0 if self.batch >= self.warmup_batches else 0.5 + 0.5 * self.batch / self.warmup_batches
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor


def build_scheduler(recipe: Recipe, optimizer):
    settings = recipe.schedule
    if settings.type == "constant":
        return ConstantSchedule(optimizer, settings.warmup_batches)
    from voxpipe.training.optim import Eden

    lr_epochs = settings.lr_hours if settings.lr_hours > 0 else settings.lr_epochs
    return Eden(optimizer, lr_batches=settings.lr_batches, lr_epochs=lr_epochs, warmup_batches=settings.warmup_batches)


def _autocast(recipe: Recipe, device: torch.device):
    precision = recipe.training.precision
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{recipe.source}: training.precision fp16 needs a CUDA device (this run: {device}); "
                          "use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{recipe.source}: training.precision bf16: {torch.cuda.get_device_name(device)} has no "
                          "bf16 support; use fp16")
    return torch.autocast(device_type=device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


# ---- export --------------------------------------------------------------------------------------
def recent_average(recipe: Recipe, model_avg: torch.nn.Module, step: int) -> torch.nn.Module | dict[str, Any]:
    """The model to export: the mean over the recent steps, not over the whole run.

    The running average weighs every step since step 0 equally, so after a short run from
    scratch it is dominated by early, untrained models (measured on the worked example: a
    900-step run's running average generates noise where the last model generates speech). The
    official recipes export "iter-N-avg-K" / "epoch-N-avg-K": the mean between two saved
    running averages. Here the start is the newest kept checkpoint at least
    `checkpoint.export_average_steps` before `step` (None: the oldest kept one); without one
    the running average since step 0 is exported.
    """
    period = recipe.checkpoint.average_period
    window = recipe.checkpoint.export_average_steps
    end = step // period * period
    candidates = []
    for path in list_checkpoints(recipe.directory):
        start = checkpoint_step(path) // period * period
        if start < end and (window is None or step - checkpoint_step(path) >= window):
            candidates.append(path)
    if not candidates:
        return model_avg
    start_path = candidates[0] if window is None else candidates[-1]
    start_state = load_checkpoint(start_path)
    if start_state.get("model_avg") is None:
        return model_avg
    return average_between(start_state["model_avg"], start_state["step"], model_avg.state_dict(), step, period)


def export(recipe: Recipe, source: torch.nn.Module, model_config: dict[str, Any], vocab: dict[str, int]) -> Path:
    """The official layout under `<checkpoint.dir>/export` (voxpipe.training.export), then the
    pipeline file that loads it."""
    from voxpipe.training.export import export_model

    export_model(source, recipe.export_dir, model_config=model_config["model"], vocab=vocab,
                 variant=recipe.acoustic_model.info.name, feature=model_config.get("feature"))
    return write_pipeline(recipe, recipe.export_dir)


def write_pipeline(recipe: Recipe, export_dir: Path) -> Path:
    """`<checkpoint.dir>/pipeline.yaml`: the recipe's pipeline with the exported model."""
    data = recipe.pipeline.to_dict()
    acoustic = data["synthesizer"]["acoustic_model"]
    acoustic.update(weights=str(export_dir.resolve()), checkpoint=None, config=None, tokens=None)
    tokenizer = data.get("tokenizer")
    if isinstance(tokenizer, dict) and "tokens" in tokenizer:
        # The export's tokens.txt is the model's vocabulary (checked equal to the tokenizer's):
        # pointing there makes the exported pipeline independent of the working directory.
        tokenizer["tokens"] = str((export_dir / "tokens.txt").resolve())
    path = recipe.directory / PIPELINE_FILE
    header = f"# Exported by `voxpipe train {recipe.source}`: voxpipe synth --config {path}\n"
    write_text_atomically(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


# ---- the loop ------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    step: int
    epoch: int
    loss: float | None
    checkpoint: Path | None
    pipeline: Path | None
    resumed_from: Path | None


def train(recipe: Recipe, *, resume: bool = True) -> TrainResult:
    """Train until `training.max_steps` (or `max_epochs`); resume from the newest checkpoint in
    `checkpoint.dir` unless `resume` is False. Returns where it stopped (rank 0 exports)."""
    from voxpipe.training.data import load_cuts, make_loader
    from voxpipe.training.loss import (
        FEATURE_SCALE,
        FlowMatchingObjective,
        flow_matching_loss,
    )
    from voxpipe.training.progress import Progress

    settings = recipe.training
    context = init_distributed(settings.device)
    autocast = _autocast(recipe, context.device)
    cuts = load_cuts(recipe.data.train)  # bad data fails before any model is built
    tokenizer = recipe.pipeline.components["tokenizer"].build("tokenizer") if "tokenizer" in recipe.pipeline.components else None
    features = recipe.pipeline.components["synthesizer"].children["features"].build("synthesizer.features")

    seed_everything(settings.seed)  # identical initial weights in every process
    distillation = None
    if recipe.distill_stage is not None:
        from voxpipe.training.teacher import build_distillation

        network, distillation, model_config, vocab = build_distillation(recipe, tokenizer, features)
        distillation.to(context.device)
        loss_fn = distillation.loss
    else:
        network, model_config, vocab = build_network(recipe, tokenizer, features)
        loss_fn = functools.partial(flow_matching_loss, condition_drop_ratio=settings.condition_drop_ratio)
    _check_tokens(recipe, cuts, vocab)
    freeze_modules(recipe, network)
    network.to(context.device)
    objective = FlowMatchingObjective(network) if distillation is None else distillation.objective(network)
    model = objective
    if context.active:
        model = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[context.device.index] if context.device.type == "cuda" else None,
            find_unused_parameters=settings.regularize)  # skipped positional scores leave weights unused
    optimizer = build_optimizer(recipe, network)
    scheduler = build_scheduler(recipe, optimizer)
    scaler = torch.amp.GradScaler("cuda") if settings.precision == "fp16" else None
    average_period = recipe.checkpoint.average_period
    model_avg = new_averaged_model(network) if average_period > 0 and context.is_main else None
    feat_scale = settings.feat_scale or FEATURE_SCALE  # the stored features are unscaled log-mels

    seed_everything(settings.seed + context.rank)  # per-process randomness from here on
    generator = torch.Generator(device=context.device).manual_seed(settings.seed + context.rank)
    regularizers = regularization.start_regularizers(recipe, network, generator)  # None: regularize false
    step = epoch = batch_in_epoch = 0
    seconds_seen = 0.0
    resumed_from = latest_checkpoint(recipe.directory) if resume else None
    if resumed_from is not None:
        state = load_checkpoint(resumed_from)
        if state["world_size"] != context.world_size:
            raise ConfigError(f"{resumed_from}: written by {state['world_size']} processes, this run has "
                              f"{context.world_size}; resume with the same number (or start a new checkpoint.dir)")
        if state.get("loss", "flow-matching") != settings.loss:
            raise ConfigError(f"{resumed_from}: written by a training.loss {state.get('loss', 'flow-matching')} run, "
                              f"this recipe's is {settings.loss}; use another checkpoint.dir")
        if state.get("regularize", settings.regularize) != settings.regularize:
            raise ConfigError(f"{resumed_from}: written with training.regularize {state['regularize']}, this recipe "
                              f"has {settings.regularize}; the network and its random state differ, use another "
                              "checkpoint.dir")
        if distillation is not None:
            distillation.load_state_dict(state.get("teacher"), str(resumed_from), state.get("teacher_digest"))
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if model_avg is not None and state.get("model_avg") is not None:
            model_avg.load_state_dict(state["model_avg"])
        set_rng_state(state["rng"][context.rank], generator)
        regularization.restore_state(network, state["rng"][context.rank].get("regularizers"))
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        seconds_seen = state["seconds_seen"]

    progress = Progress(recipe.directory, total_steps=settings.max_steps, start_step=step, enabled=context.is_main,
                        bar=settings.progress, tensorboard=settings.tensorboard)
    last_saved = step if resumed_from is not None else None
    loss_value = None

    def checkpoint() -> Path | None:
        return _save(recipe, context, network, model_avg, optimizer, scheduler, scaler, generator, step, epoch,
                     batch_in_epoch, seconds_seen, model_config, vocab,
                     distillation=distillation)

    saved = None
    try:
        while step < settings.max_steps and (settings.max_epochs is None or epoch < settings.max_epochs):
            if batch_in_epoch == 0:
                scheduler.step_epoch(seconds_seen / 3600 if recipe.schedule.lr_hours > 0 else epoch)
            loader = make_loader(cuts, recipe.data, seed=settings.seed, epoch=epoch, skip=batch_in_epoch,
                                 rank=context.rank, world_size=context.world_size)
            batches = iter(loader)
            while step < settings.max_steps:
                batch = next(batches, None)
                if not _all_true(batch is not None, context):
                    break
                step += 1
                batch_in_epoch += 1
                regularization.tick(regularizers, recipe, step, batch_in_epoch, context.world_size)
                loss = _step(model, batch, recipe, context, autocast, optimizer, scheduler, step, scaler, generator,
                             feat_scale, loss_fn)
                if distillation is not None:
                    distillation.after_step(network)
                loss_sum, batch_seconds, count = _sum([loss, batch["seconds"], 1.0], context)
                loss_value, seconds_seen = loss_sum / count, seconds_seen + batch_seconds
                if recipe.schedule.lr_hours > 0:
                    scheduler.step_epoch(seconds_seen / 3600)  # ZipVoice's --lr-hours: Eden counts hours
                if model_avg is not None:
                    update_averaged_model(network, model_avg, step=step, average_period=average_period)
                lr = scheduler.get_last_lr()[0]
                progress.update(step, loss_value, lr, seconds_seen)
                if step % settings.log_every == 0 or step == settings.max_steps:
                    progress.log(step, epoch, loss_value, lr, seconds_seen)
                if step % recipe.checkpoint.every_steps == 0:
                    saved, last_saved = checkpoint(), step
            else:
                break  # max_steps reached inside the epoch
            epoch, batch_in_epoch = epoch + 1, 0
        if last_saved != step:
            saved = checkpoint()
        pipeline = None
        if context.is_main:
            averaged = model_avg is not None and recipe.checkpoint.export_averaged and step >= average_period
            source = recent_average(recipe, model_avg, step) if averaged else network
            pipeline = export(recipe, source, model_config, vocab)
    finally:
        progress.close()
        if context.active:
            torch.distributed.barrier()
    return TrainResult(step, epoch, loss_value, saved or resumed_from, pipeline, resumed_from)


def _step(model, batch, recipe: Recipe, context: Distributed, autocast, optimizer, scheduler, step: int, scaler,
          generator, feat_scale: float, loss_fn) -> float:
    """One optimizer step on `batch`; `step` counts it (from 1). The official loop's order:
    backward, scheduler.step_batch(step), (unscale, clip,) optimizer.step."""
    features = batch["features"].to(context.device) * feat_scale
    lens = batch["features_lens"].to(context.device)
    with autocast:
        loss = loss_fn(model, batch["tokens"], features, lens, generator=generator)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} on batch {batch['ids'][:4]}...; lower optim.lr or check the data")
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    scheduler.step_batch(step)
    if recipe.optim.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], recipe.optim.clip_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _save(recipe, context, network, model_avg, optimizer, scheduler, scaler, generator, step, epoch, batch_in_epoch,
          seconds_seen, model_config, vocab, distillation=None) -> Path | None:
    """Gather every process's random state, then rank 0 writes the checkpoint."""
    own = {**rng_state(generator), "regularizers": regularization.own_state(network)}
    states = [own]
    if context.active:
        states = [None] * context.world_size
        torch.distributed.all_gather_object(states, own)
    path = None
    if context.is_main:
        recipe.directory.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "seconds_seen": seconds_seen,
            "world_size": context.world_size, "model": network.state_dict(),
            "model_avg": model_avg.state_dict() if model_avg is not None else None,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": states,
            "model_config": model_config, "vocab": vocab, "loss": recipe.training.loss,
            "regularize": recipe.training.regularize,
            "teacher": distillation.state_dict() if distillation is not None else None,
            "teacher_digest": distillation.digest() if distillation is not None else None,
        }
        path = save_checkpoint(checkpoint_path(recipe.directory, step), state, keep_last=recipe.checkpoint.keep_last)
    if context.active:
        torch.distributed.barrier()
    return path


def _check_tokens(recipe: Recipe, cuts, vocab: dict[str, int]) -> None:
    """Token ids of the prepared data must fit the model's vocabulary."""
    limit = len(vocab)
    for cut in cuts:
        tokens = cut.supervisions[0].custom["tokens"]
        if tokens and (max(tokens) >= limit or min(tokens) < 0):
            raise CompatibilityError(f"{recipe.data.train}: cut {cut.id!r} has token id {max(tokens)} outside the "
                                     f"model's vocabulary of {limit}; prepare the data with this recipe's tokenizer")


__all__ = ["TrainResult", "build_network", "export", "train", "write_pipeline"]
