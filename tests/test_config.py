"""Two-phase validation of pipeline files, overrides and error messages."""

import pytest
import yaml

from voxpipe.core.config import build_config, parse_override
from voxpipe.core.errors import ConfigError
from voxpipe.testing.fixtures import tiny_pipeline_config


def write(tmp_path, data, name="pipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"solver": {"type": "euler", "num_steps": 4, "t_shift": 0.5}, "guidance": {"type": "distilled", "scale": 3.0}}


def flow(**sections):
    """A flow-matching pipeline (the small fixture model); `sections` replace entries of the
    `synthesizer` section (its sub-components and parameters) or top-level ones (`settings`)."""
    return tiny_pipeline_config(**sections)


def test_valid_file_resolves_defaults(tmp_path):
    data = flow(solver={"type": "euler"})
    del data["synthesizer"]["guidance"]  # a sub-component section with a default may be left out
    resolved = build_config(write(tmp_path, data)).to_dict()
    family = resolved["synthesizer"]
    assert family["solver"] == {"type": "euler", "num_steps": 16, "t_shift": 0.5}
    assert family["guidance"] == {"type": "none"}
    assert family["prompt_target_rms"] == 0.1  # the family's own parameter, default from its Params
    assert resolved["settings"]["crossfade_seconds"] == 0.1 and resolved["settings"]["trim_silence"] is True


def test_override_goes_through_validation(tmp_path):
    path = write(tmp_path, flow(**BASE))
    for override in ("solver.num_steps=8", "synthesizer.solver.num_steps=8"):  # shorthand and full key path
        solver = build_config(path, [override]).components["synthesizer"].children["solver"]
        assert solver.params.num_steps == 8
    with pytest.raises(ConfigError) as caught:
        build_config(path, ["solver.num_steps=-1"])
    message = str(caught.value)
    assert "synthesizer.solver.num_steps" in message and "-1" in message and str(path) in message


def test_misspelled_param_names_key_file_and_close_match(tmp_path):
    path = write(tmp_path, flow(solver={"type": "euler", "num_stepz": 4}))
    with pytest.raises(ConfigError) as caught:
        build_config(path)
    message = str(caught.value)
    assert str(path) in message and "synthesizer.solver.num_stepz" in message
    assert "did you mean 'num_steps'" in message


def test_misspelled_section_is_an_error(tmp_path):
    # a sub-component section of the family
    with pytest.raises(ConfigError, match="synthesizer.solvr.*unknown key 'solvr'.*did you mean 'solver'"):
        build_config(write(tmp_path, flow(solvr={"type": "euler"})))
    # a top-level section
    data = flow()
    data["synthesiser"] = data.pop("synthesizer")
    with pytest.raises(ConfigError, match="top level: unknown key 'synthesiser'.*did you mean 'synthesizer'"):
        build_config(write(tmp_path, data))


def test_unknown_type_suggests_close_match(tmp_path):
    path = write(tmp_path, flow(solver={"type": "eular"}))
    with pytest.raises(ConfigError) as caught:
        build_config(path)
    message = str(caught.value)
    assert "synthesizer.solver.type" in message and "'euler'" in message and str(path) in message


def test_missing_type_lists_available(tmp_path):
    with pytest.raises(ConfigError, match="synthesizer.solver: missing 'type'.*euler"):
        build_config(write(tmp_path, flow(solver={"num_steps": 3})))
    data = flow()
    del data["synthesizer"]["type"]
    with pytest.raises(ConfigError, match="synthesizer: missing 'type'.*flow-matching"):
        build_config(write(tmp_path, data))


def test_family_and_settings_params_are_validated(tmp_path):
    # generation and prompt parameters belong to the family (`synthesizer:`) ...
    with pytest.raises(ConfigError, match="synthesizer.speed"):
        build_config(write(tmp_path, flow(**BASE, speed=0)))
    with pytest.raises(ConfigError, match="did you mean 'prompt_target_rms'"):
        build_config(write(tmp_path, flow(**BASE, prompt_target_rm=0.1)))
    # ... and are unknown keys of `settings`, which keeps the pipeline-level ones, validated too
    with pytest.raises(ConfigError, match="settings.speed.*unknown key 'speed'"):
        build_config(write(tmp_path, flow(**BASE, settings={"speed": 1.0})))
    with pytest.raises(ConfigError, match="settings.crossfade_seconds"):
        build_config(write(tmp_path, flow(**BASE, settings={"crossfade_seconds": -1})))
    with pytest.raises(ConfigError, match="did you mean 'crossfade_seconds'"):
        build_config(write(tmp_path, flow(**BASE, settings={"crossfade_second": 0.1})))


def test_override_of_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'solver'"):
        build_config(write(tmp_path, flow(**BASE)), ["solvers.num_steps=3"])
    with pytest.raises(ConfigError, match="did you mean 'synthesizer'"):
        build_config(write(tmp_path, flow(**BASE)), ["synthesiser.solver.num_steps=3"])


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(bad)
    with pytest.raises(ConfigError, match="pipeline file not found"):
        build_config(tmp_path / "absent.yaml")


def test_parse_override_types():
    assert parse_override("solver.num_steps=8") == (["solver", "num_steps"], 8)
    assert parse_override("synthesizer.solver.num_steps=8") == (["synthesizer", "solver", "num_steps"], 8)
    assert parse_override("settings.seed=null") == (["settings", "seed"], None)
    assert parse_override("tokenizer.tokens=a/b.txt") == (["tokenizer", "tokens"], "a/b.txt")
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("no_equals_sign")


def test_mapping_source_and_weights_dir_mapping(tmp_path):
    (tmp_path / "org" / "repo" / "sub").mkdir(parents=True)
    data = flow(vocoder={"type": "griffin-lim"}, **BASE, settings={"weights_dir": str(tmp_path)})
    data["synthesizer"]["acoustic_model"]["weights"] = "hf://org/repo/sub"
    config = build_config(data)
    assert config.source == "<dict>" and config.settings.weights_dir == str(tmp_path)
    # hf:// locations of nested sections map to the local copy under weights_dir
    weights = config.components["synthesizer"].children["acoustic_model"].params.weights
    assert weights == str(tmp_path / "org" / "repo" / "sub")


def test_override_of_a_section_the_pipeline_lacks(tmp_path):
    path = write(tmp_path, flow(**BASE))  # no transcriber
    with pytest.raises(ConfigError, match="has no transcriber; add one with transcriber.type=NAME"):
        build_config(path, ["transcriber.model=tiny"])
    config = build_config(path, ["transcriber.type=faster-whisper", "transcriber.model=tiny"])
    assert config.components["transcriber"].params.model == "tiny"
