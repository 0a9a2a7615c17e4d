"""Two-phase validation of pipeline files, overrides and error messages."""

import pytest
import yaml

from voxpipe.core.config import build_config, parse_override
from voxpipe.core.errors import ConfigError


def write(tmp_path, data, name="pipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"solver": {"type": "euler", "num_steps": 4, "t_shift": 0.5}, "guidance": {"type": "distilled", "scale": 3.0}}


def test_valid_file_resolves_defaults(tmp_path):
    config = build_config(write(tmp_path, {"solver": {"type": "euler"}}))
    resolved = config.to_dict()
    assert resolved["solver"] == {"type": "euler", "num_steps": 16, "t_shift": 0.5}
    assert resolved["settings"]["prompt_target_rms"] == 0.1


def test_override_goes_through_validation(tmp_path):
    path = write(tmp_path, BASE)
    assert build_config(path, ["solver.num_steps=8"]).components["solver"].params.num_steps == 8
    with pytest.raises(ConfigError) as caught:
        build_config(path, ["solver.num_steps=-1"])
    assert "solver.num_steps" in str(caught.value) and "-1" in str(caught.value) and str(path) in str(caught.value)


def test_misspelled_param_names_key_file_and_close_match(tmp_path):
    path = write(tmp_path, {"solver": {"type": "euler", "num_stepz": 4}})
    with pytest.raises(ConfigError) as caught:
        build_config(path)
    message = str(caught.value)
    assert str(path) in message and "num_stepz" in message and "did you mean 'num_steps'" in message


def test_misspelled_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'solvr'.*did you mean 'solver'"):
        build_config(write(tmp_path, {"solvr": {"type": "euler"}}))


def test_unknown_type_suggests_close_match(tmp_path):
    path = write(tmp_path, {"solver": {"type": "eular"}})
    with pytest.raises(ConfigError) as caught:
        build_config(path)
    assert "solver.type" in str(caught.value) and "'euler'" in str(caught.value) and str(path) in str(caught.value)


def test_missing_type_lists_available(tmp_path):
    with pytest.raises(ConfigError, match="missing 'type'.*euler"):
        build_config(write(tmp_path, {"solver": {"num_steps": 3}}))


def test_settings_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="settings.speed"):
        build_config(write(tmp_path, {**BASE, "settings": {"speed": 0}}))
    with pytest.raises(ConfigError, match="did you mean 'prompt_target_rms'"):
        build_config(write(tmp_path, {**BASE, "settings": {"prompt_target_rm": 0.1}}))


def test_override_of_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'solver'"):
        build_config(write(tmp_path, BASE), ["solvers.num_steps=3"])


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(bad)
    with pytest.raises(ConfigError, match="pipeline file not found"):
        build_config(tmp_path / "absent.yaml")


def test_parse_override_types():
    assert parse_override("solver.num_steps=8") == (["solver", "num_steps"], 8)
    assert parse_override("settings.seed=null") == (["settings", "seed"], None)
    assert parse_override("tokenizer.tokens=a/b.txt") == (["tokenizer", "tokens"], "a/b.txt")
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("no_equals_sign")


def test_mapping_source_and_weights_dir_mapping(tmp_path):
    (tmp_path / "org" / "repo" / "sub").mkdir(parents=True)
    config = build_config(
        {"vocoder": {"type": "griffin-lim"}, **BASE, "settings": {"weights_dir": str(tmp_path)}},
    )
    assert config.source == "<dict>" and config.settings.weights_dir == str(tmp_path)


def test_override_of_a_section_the_pipeline_lacks(tmp_path):
    path = write(tmp_path, {"guidance": {"type": "none"}})
    with pytest.raises(ConfigError, match="has no solver; add one with solver.type=NAME"):
        build_config(path, ["solver.num_steps=8"])
    assert build_config(path, ["solver.type=euler", "solver.num_steps=8"]).components["solver"].params.num_steps == 8
