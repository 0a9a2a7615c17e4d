"""The example third-party plugin installs, registers through its entry point, and builds from YAML."""

import os
import subprocess
import sys

import pytest
import yaml

from pathlib import Path

from voxpipe.testing.fixtures import tiny_pipeline_config

REPO = Path(__file__).resolve().parents[1]

EXAMPLE = REPO / "examples" / "voxpipe-heun-solver"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example into a private directory (its own dist-info, like any plugin)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    return env


def run_voxpipe(env, *args):
    return subprocess.run([sys.executable, "-m", "voxpipe.cli", *args], env=env, capture_output=True, text=True)


def test_listed_by_voxpipe_plugins(installed_example):
    result = run_voxpipe(installed_example, "plugins")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if " heun " in f" {line} ")
    assert row.split()[:4] == ["solver", "heun", "voxpipe-heun", "0.1.0"]


def test_used_from_yaml(installed_example, tmp_path):
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(tiny_pipeline_config(solver={"type": "heun", "num_steps": 3})))
    result = run_voxpipe(installed_example, "config", "show", str(path), "--set", "solver.t_shift=0.7")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["synthesizer"]["solver"] == {"type": "heun", "num_steps": 3, "t_shift": 0.7}


def test_passes_solver_conformance_in_process(installed_example):
    """Run voxpipe.testing's solver checks on the example (as its author would)."""
    code = (
        "import pytest, sys;"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--rootdir', sys.argv[1], sys.argv[1] + '/conformance_heun.py']))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "tests" / "plugin_checks")],
                            env=installed_example, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
