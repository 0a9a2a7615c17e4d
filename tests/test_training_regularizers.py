"""The Zipformer's training-time regularisers (voxpipe/plugins/zipvoice/regularizers.py): parity with
the official ZipVoice code, and the behaviour the parity cases cannot show.

Parity cases (made by tests/fixtures/training/generate_regularizers.py from the official code):
every `*/manifest.json` of kind regularizer_schedules / regularizer_functions / regularized_loss
under tests/fixtures/training/ and, when set, $VOXPIPE_FIXTURES/training/.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_training_loss import training_cases
from training_fixtures import prepared_cuts, tiny_recipe

from voxpipe.cli import main
from voxpipe.plugins.zipvoice.loading import load_model
from voxpipe.plugins.zipvoice.regularizers import (
    AbsPenalty,
    Balancer,
    Dropout,
    ParamLimit,
    Schedule,
    SequenceSkip,
    TrainingClock,
    Whiten,
    attach_regularizers,
    describe_schedules,
    detach_regularizers,
    official_batch_count,
    whiten_state,
)
from voxpipe.plugins.zipvoice.zipformer import set_kernels
from voxpipe.testing.threads import one_torch_thread
from voxpipe.training.checkpointing import latest_checkpoint, load_checkpoint
from voxpipe.training.loss import flow_matching_loss

REPO_CASES = Path(__file__).resolve().parent / "fixtures" / "training"
TINY_MODEL = REPO_CASES / "models" / "zipvoice"


def cases(kind: str) -> list:
    """The fixture cases of one manifest `kind` (repository and $VOXPIPE_FIXTURES)."""
    return training_cases((kind,))


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


class ConstantCoins:
    """Every random decision sees this value (0.0: every regulariser acts; 0.999: none does)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@functools.lru_cache(maxsize=4)
def _loaded(folder: Path) -> torch.nn.Module:
    return load_model(folder, "zipvoice").model.float()


def network(folder: Path = TINY_MODEL) -> torch.nn.Module:
    """A private copy of a fixture network (loaded once per folder)."""
    return copy.deepcopy(_loaded(folder.resolve()))


# ---- parity with the official code ---------------------------------------------------------------
# official name suffix -> ours (module path + site + value); the rest are the same on both sides.
RENAMES = [(".bypass.skip_rate", ".bypass.skip_rate.rate"), (".scale_min", ".scale_limit.min"),
           (".scale_max", ".scale_limit.max"), (".log_scale_min", ".log_scale_limit.min"),
           (".log_scale_max", ".log_scale_limit.max"), (".out_proj.dropout_p", ".out_proj.dropout.p"),
           (".encoder_pos.dropout.p", ".pos_dropout.p")]
RATES = ("attention_skip_rate", "conv_skip_rate", "const_attention_rate", "ff2_skip_rate", "ff3_skip_rate",
         "pos_emb_skip_rate")


def ours(official_name: str) -> str:
    for old, new in RENAMES:
        if official_name.endswith(old):
            return official_name[: -len(old)] + new
    if official_name.rsplit(".", 1)[-1] in RATES:
        return official_name + ".rate"
    return official_name


@pytest.mark.parametrize("case", cases("regularizer_schedules"))
def test_every_scheduled_value_is_the_official_one(case):
    manifest = json.loads((case / "manifest.json").read_text())
    net = network(case / manifest["model"])
    for batch_count, values in zip(manifest["batch_counts"], manifest["values"]):
        mine = describe_schedules(net, batch_count)
        official = dict(zip(manifest["names"], values))
        matched = set()
        for name, value in official.items():
            key = ours(name)
            if key in mine:
                assert abs(mine[key] - value) <= manifest["tolerance"], (batch_count, name, mine[key], value)
                matched.add(key)
            else:  # what voxpipe leaves out must be off in the official network too
                assert value == 0.0, (batch_count, name, value)
                assert name.rsplit(".", 1)[-1] in ("skip_rate", "straight_through_rate", "dropout", "dropout_p"), name
        assert set(mine) == matched, sorted(set(mine) - matched)[:5]


def _build(entry: dict):
    settings = entry["settings"]
    if entry["kind"] == "balancer":
        return Balancer(settings["channel_dim"], settings["min_positive"], settings["max_positive"],
                        settings["min_abs"], settings["max_abs"], grad_scale=settings["grad_scale"])
    if entry["kind"] == "whiten":
        return Whiten(settings["num_groups"], Schedule.constant(settings["whitening_limit"]),
                      grad_scale=settings["grad_scale"])
    if entry["kind"] == "limit_param_value":
        return ParamLimit(settings["min"], settings["max"])
    assert entry["kind"] == "penalize_abs_values_gt"
    return AbsPenalty(settings["limit"], settings["penalty"])


@pytest.mark.parametrize("case", cases("regularizer_functions"))
def test_forced_regularisers_change_gradients_as_the_official_ones(case):
    manifest = json.loads((case / "manifest.json").read_text())
    tensors = load_file(str(case / manifest["tensors"]))
    tolerance = manifest["tolerance"]
    clock = TrainingClock(torch.Generator(), coins=ConstantCoins(0.0), batch_count=0.0)
    for entry in manifest["cases"]:
        name = entry["name"]
        regulariser = _build(entry)
        x = tensors[f"{name}.x"].clone().requires_grad_(True)
        y = regulariser.force(x, clock)
        assert torch.equal(y, tensors[f"{name}.x"]), name  # forward: the identity
        y.backward(tensors[f"{name}.grad_out"])
        expected = tensors[f"{name}.grad"]
        limit = tolerance["abs"] + tolerance["rel"] * expected.abs().max()
        assert (x.grad - expected).abs().max() <= limit, name
        if entry["kind"] == "whiten":
            assert regulariser.prob == entry["settings"]["prob_after"], name
    changed = [e["name"] for e in manifest["cases"]
               if not torch.allclose(tensors[f"{e['name']}.grad"], tensors[f"{e['name']}.grad_out"])]
    assert len(changed) >= len(manifest["cases"]) - 1  # all but "white enough" modify the gradient


@pytest.mark.parametrize("case", cases("regularized_loss"))
def test_train_mode_loss_and_gradients_equal_the_official(case):
    """Official ZipVoice.forward in training mode with its regularisers on, coins held constant and
    torch seeded for the masks: same loss, same gradients, same Whiten states afterwards."""
    manifest = json.loads((case / "manifest.json").read_text())
    tensors = load_file(str(case / manifest["tensors"]))
    tolerance = manifest["tolerance"]

    def loss_and_grads(regularised: bool):
        net = network(case / manifest["model"]).train()
        if regularised:
            clock = TrainingClock(torch.Generator().manual_seed(manifest["mask_seed"]),
                                  coins=ConstantCoins(manifest["coin"]), batch_count=manifest["batch_count"])
            attach_regularizers(net, clock)
        loss = flow_matching_loss(net, manifest["tokens"], tensors["features"], tensors["features_lens"],
                                  noise=tensors["noise"], t=tensors["t"],
                                  speech_condition_mask=tensors["speech_condition_mask"], condition_drop_ratio=0.0)
        loss.backward()
        grads = {n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in net.named_parameters()}
        return net, loss.item(), grads

    net, loss, grads = loss_and_grads(True)
    assert abs(loss - manifest["loss"]) <= tolerance["loss_abs"]
    assert set(grads) == {k[len("grad."):] for k in tensors if k.startswith("grad.")}
    for name, grad in grads.items():
        expected = tensors[f"grad.{name}"]
        limit = tolerance["grad_abs"] + tolerance["grad_rel"] * expected.abs().max()
        assert (grad - expected).abs().max() <= limit, name
    assert whiten_state(net) == manifest["whiten_probs_after"]
    # The case is meaningful: the exact network gives another loss or other gradients.
    _, exact_loss, exact_grads = loss_and_grads(False)
    assert exact_loss != loss or any(not torch.allclose(exact_grads[n], grads[n], atol=1e-6) for n in grads)


# ---- behaviour -----------------------------------------------------------------------------------
def _decoder_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 17, 36, generator=gen)
    padding = torch.zeros(3, 17, dtype=torch.bool)
    padding[1, 12:] = True
    return x, torch.rand(3, generator=gen), padding


def _run(net, seed: int, coin_seed: int, batch_count: float = 1000.0):
    detach_regularizers(net)
    attach_regularizers(net, TrainingClock(torch.Generator().manual_seed(seed), coins=random.Random(coin_seed),
                                           batch_count=batch_count))
    x, t, padding = _decoder_inputs()
    return net.fm_decoder(x, t, padding_mask=padding)


def test_regularisers_act_only_in_training_mode():
    net = network()
    x, t, padding = _decoder_inputs()
    with torch.no_grad():
        exact = net.eval().fm_decoder(x, t, padding_mask=padding)
        exact_train_mode = net.train().fm_decoder(x, t, padding_mask=padding)
        attach_regularizers(net, TrainingClock(torch.Generator().manual_seed(0), batch_count=500.0))
        regularised_eval = net.eval().fm_decoder(x, t, padding_mask=padding)
        regularised_train = net.train().fm_decoder(x, t, padding_mask=padding)
    assert torch.equal(exact, exact_train_mode)  # not attached: training mode is the exact network
    assert torch.equal(exact, regularised_eval)  # attached, eval mode: bit-exact
    assert not torch.allclose(exact, regularised_train)  # dropout, skipping
    detach_regularizers(net)
    with torch.no_grad():
        assert torch.equal(exact, net.train().fm_decoder(x, t, padding_mask=padding))


def test_train_mode_forward_is_reproducible_for_a_seed():
    net = network().train()
    with torch.no_grad():
        first, again = _run(net, seed=1, coin_seed=2), _run(net, seed=1, coin_seed=2)
        other_masks = _run(net, seed=3, coin_seed=2)
    assert torch.equal(first, again)
    assert not torch.equal(first, other_masks)


def test_gradients_are_reproducible_for_a_seed_and_differ_from_the_exact_network():
    def grads(seed: int | None):
        net = network().train()
        if seed is None:
            x, t, padding = _decoder_inputs()
            out = net.fm_decoder(x, t, padding_mask=padding)
        else:
            out = _run(net, seed=seed, coin_seed=seed, batch_count=200.0)
        out.square().mean().backward()
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in net.fm_decoder.parameters()])

    assert torch.equal(grads(4), grads(4))
    assert not torch.allclose(grads(4), grads(None))


def test_masks_come_from_the_seeded_generator():
    x = torch.randn(1, 9, 8)
    torch.manual_seed(5)
    official_style = torch.nn.functional.dropout(x, 0.15, training=True)
    clock = TrainingClock(torch.Generator().manual_seed(5), batch_count=0.0)
    assert torch.equal(Dropout(0.15)(x, clock), official_style)  # torch's dropout draws, from our generator

    clock = TrainingClock(torch.Generator().manual_seed(6), batch_count=0.0)
    hidden = torch.ones(7, 4, 50)  # (T, B, C)
    dropped = Dropout(Schedule((0.0, 0.3), (20000.0, 0.1)), shared_dim=0)(hidden, clock)
    assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # one mask for all frames
    assert torch.allclose(dropped.unique(), torch.tensor([0.0, 1 / 0.7]))
    reference = (1 / 0.7) * (torch.rand(1, 4, 50, generator=torch.Generator().manual_seed(6)) > 0.3)
    assert torch.equal(dropped[:1], reference)

    skip = SequenceSkip(Schedule((0.0, 0.5), (100.0, 0.0)))
    clock = TrainingClock(torch.Generator().manual_seed(7), batch_count=50.0)  # rate 0.25
    keep = skip.keep_mask(torch.zeros(5, 64, 3), clock)
    assert keep.shape == (64, 1) and torch.equal(keep, (torch.rand(64, 1, generator=torch.Generator().manual_seed(7)) > 0.25).float())
    clock.batch_count = 100.0
    assert skip.keep_mask(torch.zeros(5, 64, 3), clock) is None  # rate 0: nothing drawn


def test_official_batch_count():
    # refreshed on batches 1, 11, 21, ... of each epoch to (steps done) x max_duration x processes / 50
    assert official_batch_count(1, 1, 100.0, 1, fine_tuning=False) == 0.0
    assert official_batch_count(10, 10, 100.0, 1, fine_tuning=False) == 0.0
    assert official_batch_count(11, 11, 100.0, 1, fine_tuning=False) == 20.0
    assert official_batch_count(11, 11, 100.0, 4, fine_tuning=False) == 80.0
    assert official_batch_count(25, 3, 100.0, 1, fine_tuning=False) == 2 * 22  # epoch restarted at step 23
    assert official_batch_count(11, 11, 100.0, 1, fine_tuning=True) == 100020.0


def test_the_trainer_clock_counts_from_the_recipe():
    """regularization.tick: the recipe's max_duration and processes; the fine-tuning offset when the
    run starts from a checkpoint (init_from, e.g. 'teacher' for distillation); no clock, no-op."""
    from types import SimpleNamespace

    from voxpipe.training import regularization

    def ticked(init_from):
        recipe = SimpleNamespace(data=SimpleNamespace(max_duration=25.0), init_from=init_from)
        clock = TrainingClock(torch.Generator())
        regularization.tick(clock, recipe, 21, 21, 2)
        return clock.batch_count

    from_scratch = official_batch_count(21, 21, 25.0, 2, fine_tuning=False)
    assert ticked(None) == from_scratch > 0
    assert ticked("teacher") == ticked("pipeline") == from_scratch + 100000.0
    regularization.tick(None, SimpleNamespace(), 1, 1, 1)  # regularize: false


def test_schedules_follow_the_batch_count():
    schedule = Schedule((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0), default=0.0)
    values = [schedule(c) for c in (None, -5.0, 0.0, 2000.0, 4000.0, 10000.0, 1e9)]
    assert values == pytest.approx([0.0, 0.2, 0.2, 0.125, 0.05, 0.025, 0.0], abs=1e-15)
    with pytest.raises(ValueError, match="increasing"):
        Schedule((10.0, 1.0), (5.0, 0.0))


def test_copies_of_a_regularised_network_are_exact():
    net = network().train()
    attach_regularizers(net, TrainingClock(torch.Generator(), batch_count=0.0))
    clone = copy.deepcopy(net)  # e.g. the model average or an EMA teacher
    assert whiten_state(clone) == {} and whiten_state(net)


def test_fused_kernels_are_refused():
    net = network()
    set_kernels(net, "fused")
    with pytest.raises(ValueError, match="reference kernels"):
        attach_regularizers(net, TrainingClock(torch.Generator()))


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    return prepared_cuts(tmp_path_factory.mktemp("data"))


def test_voxpipe_train_regularises_by_default_and_checkpoints_the_state(tmp_path, cuts):
    def run(name: str, regularize: bool | None):
        training = {"max_steps": 2} if regularize is None else {"max_steps": 2, "regularize": regularize}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_recipe(tmp_path / name, cuts, training=training)))
        assert main(["train", str(path)]) == 0
        return load_checkpoint(latest_checkpoint(tmp_path / name))

    regularised, exact = run("default", None), run("exact", False)
    state = regularised["rng"][0]["regularizers"]
    assert state and set(state.values()) <= {0.025, 0.25}  # every Whiten's adaptive probability
    assert exact["rng"][0]["regularizers"] == {}
    assert any(not torch.equal(regularised["model"][k], exact["model"][k]) for k in exact["model"])
    assert all(torch.isfinite(v).all() for v in regularised["model"].values())
