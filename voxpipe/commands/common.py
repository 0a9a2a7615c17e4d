"""What every `voxpipe` sub-command shares: exit codes, the usage error, the pipeline arguments
(`--config`, `--set`, `--weights-dir`, `--sample-rate`, `-O key=value`) and their checks.

Checks that need no model run first: a command validates its config, options, text and output
path, and only then loads weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

from voxpipe.core.errors import ConfigError
from voxpipe.core.precision import BACKENDS, PRECISIONS

DEFAULT_CONFIG = "piper"
"""The pipeline every command uses when none is given (synth, voice create, serve, batch, eval)."""

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


class UsageError(ConfigError):
    """Bad command-line usage (exit 2)."""


def add_config_args(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--config", "-c", required=required, default=None if required else DEFAULT_CONFIG,
        help=f"pipeline YAML file or bundled name (default: {DEFAULT_CONFIG}; see `voxpipe config list`)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. solver.num_steps=8 (repeatable)")
    parser.add_argument("--weights-dir", default=None,
                        help="local copy of the official weight layouts; hf://org/repo/path is looked up under it")
    parser.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                        help="resample the output to this rate (soxr); default: the model's own")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="acoustic-model arithmetic: fp32 (parity path), bf16 (CPUs with native bf16), int8 "
                             "(onnx graphs), auto (fastest within the quality bound here; see `voxpipe plugins "
                             "--cpu`); default: auto, unless the config sets the acoustic model's dtype, "
                             "precision or kernels itself")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="torch or onnx: must match the config (exported graphs come from `voxpipe export onnx`)")


def add_option_args(parser: argparse.ArgumentParser) -> None:
    """Per-call options of the model family: `-O key=value` plus convenience flags."""
    parser.add_argument("-O", "--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="a per-call option of the model family, e.g. -O noise_scale=0.5 (repeatable; "
                             "`voxpipe plugins --options NAME` lists them)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--speed", type=float, default=None, help="> 1 is faster")
    parser.add_argument("--num-steps", type=int, default=None, help="solver steps (flow-matching families)")
    parser.add_argument("--guidance-scale", type=float, default=None)
    parser.add_argument("--t-shift", type=float, default=None)


def overrides_of(args) -> list[str]:
    """`--set` values plus `--sample-rate` as `settings.sample_rate=HZ`."""
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "sample_rate", None) is not None:
        overrides.append(f"settings.sample_rate={args.sample_rate}")
    return overrides


def load_config(args):
    """The validated pipeline configuration of the command (no weights loaded)."""
    from voxpipe.core.config import build_config

    config = build_config(args.config, overrides_of(args), weights_dir=getattr(args, "weights_dir", None))
    precision, backend = getattr(args, "precision", None), getattr(args, "backend", None)
    from voxpipe.core.precision import default_overrides, resolve

    if precision is None and backend is None:
        extra, label = default_overrides(config)
    else:
        extra, label = resolve(config, precision, backend)
    args.arithmetic = label  # what runs, for the commands' status line
    if not extra:
        return config
    return build_config(args.config, overrides_of(args) + extra, weights_dir=getattr(args, "weights_dir", None))


def options_of(args, config) -> dict[str, Any]:
    """The per-call options given on the command line, validated against the family's `Options`
    (before any weights load). Unknown or malformed ones are usage errors."""
    import yaml

    values: dict[str, Any] = {}
    for flag, key in (("speed", "speed"), ("num_steps", "num_steps"), ("guidance_scale", "guidance_scale"),
                      ("t_shift", "t_shift")):
        value = getattr(args, flag, None)
        if value is not None:
            values[key] = value
    for item in getattr(args, "options", []) or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-O {item!r} is not of the form key=value (e.g. -O speed=1.2)")
        try:
            values[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = text
    family = config.components["synthesizer"].info.cls
    family.parse_options(values)
    return values


def load_pipeline(config):
    from voxpipe.core.pipeline import Pipeline

    return Pipeline.from_config(config)


def read_text_file(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read --text-file {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"--text-file {path} is not UTF-8 text (invalid byte at offset {error.start}); "
                         "convert it, e.g. iconv -t UTF-8") from None


def check_output(path: str, inputs: Iterable[str | None] = (), *, audio: bool = True, option: str = "-o/--output") -> None:
    """Usage errors for an output path, before any work: its directory must exist, it must not
    be a directory nor one of the inputs, and audio outputs need a writable sound format."""
    from voxpipe.core.files import refuse_same_file

    output = Path(path)
    if output.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file name")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: directory {parent} does not exist")
    if audio:
        from voxpipe.core.audio import check_audio_suffix

        try:
            check_audio_suffix(output)
        except ConfigError as error:
            raise UsageError(f"{option} {error}") from None
    refuse_same_file(output, inputs, option=option)
