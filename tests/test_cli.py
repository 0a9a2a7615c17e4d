"""The command line: exit codes and one-line errors (no tracebacks)."""

import yaml

from voxpipe.cli import main
from voxpipe.testing.fixtures import tiny_pipeline_config


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plugins_table_lists_builtins(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["KIND", "NAME", "PACKAGE", "VERSION"]
    assert any(r.split()[:3] == ["solver", "euler", "voxpipe"] for r in rows)
    assert any(r.split()[:3] == ["synthesizer", "flow-matching", "voxpipe"] for r in rows)


def test_config_validate_and_show_with_override(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tiny_pipeline_config(solver={"type": "euler", "num_steps": 4})))
    assert run(capsys, "config", "validate", str(path))[0] == 0
    for override in ("solver.num_steps=8", "synthesizer.solver.num_steps=8"):  # shorthand and full key path
        code, out, _ = run(capsys, "config", "show", str(path), "--set", override)
        assert code == 0 and yaml.safe_load(out)["synthesizer"]["solver"]["num_steps"] == 8


def test_config_error_exits_2_with_one_message(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tiny_pipeline_config(solver={"type": "eulerr"})))
    code, _, err = run(capsys, "config", "validate", str(path))
    assert code == 2 and "did you mean 'euler'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    path.write_text(yaml.safe_dump(tiny_pipeline_config(solver={"type": "euler", "num_step": 8})))
    code, _, err = run(capsys, "config", "show", str(path))
    assert code == 2 and "synthesizer.solver.num_step" in err and "did you mean 'num_steps'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_error_exits_2(capsys):
    code, _, err = run(capsys, "synth", "--text", "hi")  # no -o
    assert code == 2 and "-o/--output" in err


def test_missing_text_file_is_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "synth", "--text-file", str(tmp_path / "none.txt"), "-o", str(tmp_path / "o.wav"))
    assert code == 2 and "none.txt" in err


def test_plugins_lists_load_failures(capsys, monkeypatch):
    import types

    from voxpipe.registry import Registry, hookimpl

    @hookimpl
    def register_components(register):
        raise ImportError("No module named 'missing_dependency'")

    registry = Registry()
    registry.load_entry_points(["flow"])
    registry.add_plugin(types.SimpleNamespace(register_components=register_components), "broken", package="broken-pkg")
    monkeypatch.setattr("voxpipe.registry.get_registry", lambda: registry)
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and "euler" in out
    assert "failed to load" in out and "broken (broken-pkg)" in out and "missing_dependency" in out


def test_plugins_lists_the_options_a_family_takes(capsys):
    code, out, _ = run(capsys, "plugins", "--options", "flow-matching")
    listed = [line.split(":")[0].strip() for line in out.splitlines()[1:]]
    assert code == 0 and listed == ["speed", "num_steps", "guidance_scale", "t_shift"]
    code, _, err = run(capsys, "plugins", "--options", "flow-matchin")
    assert code == 2 and "did you mean 'flow-matching'" in err
