"""The model-family core: options, voices, configs, kinds and commands (issue 12), and the
checks that run before any model loads (issue 20)."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
import yaml

from voxpipe import Pipeline
from voxpipe.cli import main
from voxpipe.core.config import build_config
from voxpipe.core.errors import ConfigError, VoiceFileError
from voxpipe.core.voice import Voice
from voxpipe.registry import Registry, hookimpl
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT, fixtures_root, tiny_pipeline_config

PROMPT = fixtures_root() / "e2e" / "cmu_arctic_a0009.wav"


@pytest.fixture(scope="module")
def flow():
    pipeline = Pipeline.from_config(tiny_pipeline_config(solver={"type": "euler", "num_steps": 2}))
    return pipeline, pipeline.encode_prompt(PROMPT, E2E_PROMPT_TEXT)


# ---- options -----------------------------------------------------------------------------------
def test_unknown_option_names_the_options_the_family_takes(flow):
    pipeline, voice = flow
    with pytest.raises(ConfigError, match=r"no option 'num_stpes'; did you mean num_steps\?.*It takes: "
                                          r"guidance_scale, num_steps, speed, t_shift"):
        pipeline.synthesize("Hi.", voice, num_stpes=3)


@pytest.mark.parametrize("options, match", [
    ({"num_steps": -3}, "num_steps"), ({"speed": math.nan}, "speed"), ({"speed": math.inf}, "speed"),
    ({"num_steps": 10**8}, "above the limit 200"), ({"speed": 0.001}, r"outside \[0.25, 4.0\]"),
])
def test_option_values_are_checked_before_work(flow, options, match):
    pipeline, voice = flow
    with pytest.raises(ConfigError, match=match):
        pipeline.synthesize("Hi.", voice, **options)


def test_options_reach_the_family(flow):
    pipeline, voice = flow
    two = pipeline.synthesize("Hello there.", voice, seed=1, num_steps=2)
    three = pipeline.synthesize("Hello there.", voice, seed=1, num_steps=3)
    assert not torch.equal(two.samples, three.samples)
    assert torch.equal(two.samples, pipeline.synthesize("Hello there.", voice, seed=1).samples)  # 2 = configured


def test_text_over_the_limit_is_refused(flow):
    pipeline, voice = flow
    limited = Pipeline(synthesizer=pipeline.synthesizer, tokenizer=pipeline.tokenizer, settings={"max_text_chars": 10})
    with pytest.raises(ConfigError, match=r"at most 10 \(settings.max_text_chars\)"):
        limited.synthesize("This text is longer than ten characters.", voice)


# ---- voices ------------------------------------------------------------------------------------
def test_voice_file_round_trip_names_family_and_fingerprint(flow, tmp_path):
    pipeline, voice = flow
    path = voice.save(tmp_path / "a.voice")
    loaded = Voice.load(path)
    assert loaded.family == "flow-matching" and loaded.fingerprint == pipeline.synthesizer.voice_fingerprint()
    again = pipeline.synthesize("Hello there.", loaded, seed=3)
    assert torch.equal(again.samples, pipeline.synthesize("Hello there.", voice, seed=3).samples)
    assert "/" not in "".join(loaded.metadata["settings"]["source"])  # no absolute prompt path stored


def test_voice_of_another_family_is_refused_naming_both(flow):
    _, voice = flow
    foreign = Voice("kokoro", {"style_pack": torch.zeros(510, 1, 256)}, {}, {"style_dim": 256}, 24000)
    with pytest.raises(ConfigError, match="made for synthesizer 'kokoro'; this pipeline's synthesizer is 'flow-matching'"):
        flow[0].synthesize("Hi.", foreign)


def test_voice_of_an_incompatible_config_is_refused(flow):
    pipeline, voice = flow
    other = Voice(voice.family, voice.tensors, voice.metadata, {**voice.fingerprint, "hop_length": 512}, voice.sample_rate)
    with pytest.raises(ConfigError, match="hop_length: voice 512, pipeline 256"):
        pipeline.synthesize("Hi.", other)


@pytest.mark.parametrize("change, match", [
    (lambda t, m: t.update(prompt_features=torch.zeros(0, t["prompt_features"].shape[1])), "0 frames"),
    (lambda t, m: t.update(prompt_token_ids=torch.zeros(0, dtype=torch.int64)), "prompt_token_ids"),
    (lambda t, m: t.update(prompt_token_ids=torch.tensor([10**6])), "vocabulary has ids"),
    (lambda t, m: m.update(prompt_rms=0.0), "prompt_rms is 0.0"),
    (lambda t, m: t.update(prompt_features=t["prompt_features"][:, :7].contiguous()), "7-dim frames"),
])
def test_malformed_voice_payloads_are_named(flow, tmp_path, change, match):
    pipeline, voice = flow
    tensors, metadata = dict(voice.tensors), json.loads(json.dumps(voice.metadata))
    change(tensors, metadata)
    path = Voice(voice.family, tensors, metadata, voice.fingerprint, voice.sample_rate).save(tmp_path / "bad.voice")
    with pytest.raises(VoiceFileError, match=match):
        pipeline.synthesize("Hi.", str(path))


def test_non_finite_voice_tensors_are_refused_on_load(flow, tmp_path):
    _, voice = flow
    features = voice.tensors["prompt_features"].clone()
    features[0, 0] = math.nan
    path = Voice(voice.family, {**voice.tensors, "prompt_features": features}, voice.metadata).save(tmp_path / "nan.voice")
    with pytest.raises(VoiceFileError, match="non-finite"):
        Voice.load(path)


# ---- configs -----------------------------------------------------------------------------------
def test_misspelt_type_is_named_with_its_close_match():
    config = tiny_pipeline_config()
    config["synthesizer"]["solver"] = {"tpye": "euler"}
    with pytest.raises(ConfigError, match=r"synthesizer.solver: missing 'type' \('tpye' looks like a misspelt 'type'\)"):
        build_config(config)


def test_missing_sections_fail_validation():
    config = tiny_pipeline_config()
    del config["synthesizer"]
    with pytest.raises(ConfigError, match="missing required section 'synthesizer'"):
        build_config(config)
    config = tiny_pipeline_config()
    del config["synthesizer"]["vocoder"]
    with pytest.raises(ConfigError, match="synthesizer.vocoder: missing required key"):
        build_config(config)
    config = tiny_pipeline_config()
    del config["tokenizer"]
    with pytest.raises(ConfigError, match="missing required section 'tokenizer'"):
        build_config(config)


def test_shorthand_overrides_reach_the_family_sections():
    config = build_config(tiny_pipeline_config(), ["solver.num_steps=7", "synthesizer.guidance.scale=2.5"])
    family = config.to_dict()["synthesizer"]
    assert family["solver"]["num_steps"] == 7 and family["guidance"]["scale"] == 2.5


def test_yaml_alias_bomb_is_bounded(tmp_path, capsys):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f'{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)},*{chr(96 + i)},*{chr(96 + i)},*{chr(96 + i)},'
                     f'*{chr(96 + i)},*{chr(96 + i)},*{chr(96 + i)},*{chr(96 + i)},*{chr(96 + i)}]')
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "YAML aliases" in err and len(err) < 500


def test_config_reads_only_yaml_files_and_never_echoes_them(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("password: hunter2\n")
    assert main(["synth", "--config", str(secret), "--text", "Hi.", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "not a pipeline file" in err and "hunter2" not in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed hunter2\n")
    assert main(["config", "validate", str(broken)]) == 2
    assert "hunter2" not in capsys.readouterr().err


def test_error_messages_bound_the_values_they_quote():
    config = tiny_pipeline_config()
    config["synthesizer"]["speed"] = "x" * 100_000
    with pytest.raises(ConfigError) as error:
        build_config(config)
    assert len(str(error.value)) < 400


# ---- registry: kinds and commands from plugins ---------------------------------------------------
def test_a_plugin_adds_a_kind_a_component_of_it_and_a_command(capsys):
    from voxpipe.core.component import Component

    class Meter(Component):
        kind, name = "meter", "peak"

    plugin = types.SimpleNamespace(
        register_kinds=hookimpl(lambda register: register("meter", "audio -> a number")),
        register_components=hookimpl(lambda register: register(Meter)),
        register_commands=hookimpl(lambda subparsers: subparsers.add_parser("hello").set_defaults(
            handler=lambda args: print("hello from a plugin") or 0)),
    )
    registry = Registry()
    registry.add_plugin(plugin, "meters")
    assert registry.failures == [] and registry.get("meter", "peak").cls is Meter
    import argparse

    parser = argparse.ArgumentParser()
    registry.register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hello"])
    assert args.handler(args) == 0 and "hello from a plugin" in capsys.readouterr().out


def test_a_component_of_an_unknown_kind_is_a_named_failure():
    from voxpipe.core.component import Component

    class Stray(Component):
        kind, name = "no_such_kind", "x"

    registry = Registry()
    registry.add_plugin(types.SimpleNamespace(register_components=hookimpl(lambda register: register(Stray))), "stray")
    assert "no_such_kind" in registry.failures[0].error and "register_kinds" in registry.failures[0].error


def test_params_are_the_single_source_of_defaults():
    from voxpipe.plugins.flow.euler import EulerSolver

    solver = EulerSolver(num_steps=3)  # the rest from Params
    assert solver.t_shift == EulerSolver.Params.model_fields["t_shift"].default
    import inspect

    from voxpipe.registry import get_registry

    for info in get_registry().components():
        init = getattr(info.cls.__init__, "__wrapped__", info.cls.__init__)
        repeated = [p.name for p in inspect.signature(init).parameters.values()
                    if p.name in info.params_model.model_fields and p.default is not inspect.Parameter.empty]
        assert not repeated, f"{info.kind} {info.name!r} repeats the defaults of {repeated} in __init__"


# ---- the CLI checks before any model loads -------------------------------------------------------
@pytest.mark.parametrize("extra, match", [
    (["-o", "{tmp}/missing/out.wav"], "does not exist"),
    (["-o", "{tmp}"], "is a directory"),
    (["-o", "{tmp}/out.xyz"], "unsupported extension"),
    (["-o", "{tmp}/out.wav", "--num-steps", "-3"], "num_steps"),
    (["-o", "{tmp}/out.wav", "--speed", "nan"], "speed"),
    (["-o", "{tmp}/out.wav", "-O", "nonsense=1"], "no option 'nonsense'"),
])
def test_usage_errors_exit_2_before_the_model_loads(tmp_path, capsys, monkeypatch, extra, match):
    import voxpipe.commands.common as common

    monkeypatch.setattr(common, "load_pipeline", lambda config: pytest.fail("the model was loaded"))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_pipeline_config()))
    args = ["synth", "--config", str(config), "--voice", "x.voice", "--text", "Hi."]
    assert main(args + [part.format(tmp=tmp_path) for part in extra]) == 2
    assert match in capsys.readouterr().err


def test_non_utf8_text_file_is_a_usage_error(tmp_path, capsys):
    text = tmp_path / "latin1.txt"
    text.write_bytes("caf\xe9".encode("latin-1"))
    assert main(["synth", "--text-file", str(text), "-o", str(tmp_path / "o.wav")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_output_that_is_an_input_is_refused(tmp_path, capsys):
    prompt = tmp_path / "ref.wav"
    prompt.write_bytes(PROMPT.read_bytes())
    link = tmp_path / "link.wav"
    link.symlink_to(prompt)
    before = prompt.read_bytes()
    for output in (prompt, link):
        assert main(["voice", "create", str(prompt), "--text", "x", "--config", "luxtts", "-o", str(output)]) == 2
        assert main(["synth", "--config", "luxtts", "--prompt", str(prompt), "--prompt-text", "x", "--text", "Hi.",
                     "-o", str(output)]) == 2
    assert "would destroy the input" in capsys.readouterr().err and prompt.read_bytes() == before


def test_voice_create_and_synth_share_the_default_pipeline():
    from voxpipe.cli import build_parser
    from voxpipe.commands.common import DEFAULT_CONFIG

    parser = build_parser()
    synth = parser.parse_args(["synth", "--text", "x", "-o", "x.wav"])
    create = parser.parse_args(["voice", "create", "a.wav", "-o", "a.voice"])
    serve = parser.parse_args(["serve"])
    assert synth.config == create.config == serve.config == DEFAULT_CONFIG


# ---- output rate -------------------------------------------------------------------------------
def test_output_is_resampled_to_the_requested_rate(flow):
    pipeline, voice = flow
    native = pipeline.synthesize("Hello there.", voice, seed=2)
    resampled_pipeline = Pipeline(synthesizer=pipeline.synthesizer, tokenizer=pipeline.tokenizer,
                                  chunker=pipeline.chunker, settings={"sample_rate": 16000})
    audio = resampled_pipeline.synthesize("Hello there.", voice, seed=2)
    assert audio.sample_rate == 16000 and resampled_pipeline.sample_rate == 16000
    assert audio.duration == pytest.approx(native.duration, abs=2e-3)
    from voxpipe.streaming import StreamingSession

    session = StreamingSession(resampled_pipeline, voice, seed=2)
    session.push_text("Hello there.")
    pcm = session.read_all()
    assert len(pcm) // 2 == pytest.approx(audio.num_samples, abs=64)


def test_override_of_a_left_out_section_starts_from_its_default():
    config = tiny_pipeline_config()
    del config["synthesizer"]["solver"]
    solver = build_config(config, ["solver.num_steps=8"]).to_dict()["synthesizer"]["solver"]
    assert solver == {"type": "euler", "num_steps": 8, "t_shift": 0.5}
