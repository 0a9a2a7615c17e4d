"""`voxpipe` command line: a thin shell over the Python API.

Exit codes: 0 success; 2 usage or configuration error (one message, no traceback);
1 runtime failure (missing weights, unreadable audio, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from voxpipe.core.errors import ConfigError, VoxpipeError

DEFAULT_CONFIG = "kokoro"
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


class UsageError(ConfigError):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 itself; keep our one-line format
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _add_config_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--config", "-c", required=required, default=None if required else DEFAULT_CONFIG,
        help="pipeline YAML file or bundled name (luxtts, zipvoice, zipvoice_distill, ..., kokoro)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. solver.num_steps=8 (repeatable)")
    parser.add_argument("--weights-dir", default=None,
                        help="local copy of the official weight layouts; hf://org/repo/path is looked up under it")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voxpipe", description="Plugin-based text-to-speech.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser("plugins", help="list every registered component and plugin load failures")

    config = commands.add_parser("config", help="validate or show a pipeline file")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    config_commands.required = True
    for action, text in (("validate", "check a pipeline file"), ("show", "print the fully resolved pipeline")):
        sub = config_commands.add_parser(action, help=text)
        sub.add_argument("file")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    synth = commands.add_parser("synth", help="synthesize speech to a WAV file")
    _add_config_args(synth, required=False)
    source = synth.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="text to speak")
    source.add_argument("--text-file", help="file with the text to speak (UTF-8)")
    synth.add_argument("--prompt", action="append", help="prompt audio of the voice to clone (dialog models: "
                       "give it twice, speaker 1 then speaker 2)")
    synth.add_argument("--prompt-text", action="append",
                       help="transcript of the prompt, once per --prompt (transcribed offline when omitted)")
    synth.add_argument("--voice", help="a .voice file (voxpipe voice create), or a built-in voice name")
    synth.add_argument("-o", "--output", required=True, help="output WAV path")
    synth.add_argument("--seed", type=int, default=None)
    synth.add_argument("--speed", type=float, default=None)
    synth.add_argument("--num-steps", type=int, default=None)
    synth.add_argument("--guidance-scale", type=float, default=None)
    synth.add_argument("--t-shift", type=float, default=None)
    synth.add_argument("--quiet", action="store_true", help="no progress bar")

    voice = commands.add_parser("voice", help="encode and save voice prompts")
    voice_commands = voice.add_subparsers(dest="voice_command", metavar="ACTION", parser_class=_Parser)
    voice_commands.required = True
    create = voice_commands.add_parser("create", help="encode a prompt once into a .voice file")
    create.add_argument("audio", nargs="+", help="prompt audio (two files for a dialog model's two speakers)")
    create.add_argument("--text", action="append", help="transcript, once per audio (transcribed offline when omitted)")
    create.add_argument("-o", "--output", required=True)
    _add_config_args(create, required=False)
    create.set_defaults(config="luxtts")

    for register in _extra_commands():
        register(commands)
    return parser


def _extra_commands():
    """Sub-commands living in their own modules (each has `register(subparsers)`)."""
    import importlib

    return [importlib.import_module(f"voxpipe.commands.{name}").register for name in EXTRA_COMMANDS]


EXTRA_COMMANDS: tuple[str, ...] = ("export", "serve")


# ---- command implementations -------------------------------------------------------------------
def cmd_plugins(args) -> int:
    from voxpipe.registry import get_registry

    registry = get_registry()
    rows = [("KIND", "NAME", "PACKAGE", "VERSION", "DESCRIPTION")]
    rows += [(i.kind, i.name, i.package, i.version, i.description) for i in registry.components()]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:4])) + "  " + row[4])
    if registry.failures:
        print("\nplugins that failed to load:")
        for failure in registry.failures:
            print(f"  {failure.plugin} ({failure.package}): {failure.error}")
    return EXIT_OK


def cmd_config(args) -> int:
    from voxpipe.core.config import build_config

    config = build_config(args.file, args.overrides)
    if args.config_command == "validate":
        print(f"{config.source}: OK ({', '.join(config.components)})")
    else:
        print(config.to_yaml(), end="")
    return EXIT_OK


def _load_pipeline(args):
    from voxpipe.core.pipeline import Pipeline

    return Pipeline.from_config(args.config, args.overrides, weights_dir=args.weights_dir)


def cmd_synth(args) -> int:
    from voxpipe.core.voice import Voice

    text = args.text if args.text is not None else _read_text(args.text_file)
    pipeline = _load_pipeline(args)
    if args.prompt and args.voice:
        raise UsageError("give either --prompt or --voice, not both")
    if pipeline.acoustic_model.output == "features":
        if args.prompt:
            voice = pipeline.encode_prompt(args.prompt, args.prompt_text)
        elif args.voice:
            voice = Voice.load(args.voice)
        else:
            raise UsageError(f"{pipeline.config.source if pipeline.config else 'this pipeline'} clones a voice: "
                             "give --prompt ref.wav [--prompt-text ...] or --voice alice.voice")
    else:
        if args.prompt:
            raise UsageError(f"acoustic_model {pipeline.acoustic_model.name!r} has built-in voices and takes no "
                             "--prompt; choose one with --voice NAME")
        voice = args.voice
    audio = pipeline.synthesize(
        text, voice, speed=args.speed, num_steps=args.num_steps, guidance_scale=args.guidance_scale,
        t_shift=args.t_shift, seed=args.seed, progress=not args.quiet,
    )
    path = audio.save(args.output)
    print(f"wrote {path} ({audio.duration:.2f} s, {audio.sample_rate} Hz, {audio.num_channels} channel(s))")
    return EXIT_OK


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read --text-file {path}: {error.strerror}") from None


def cmd_voice(args) -> int:
    pipeline = _load_pipeline(args)
    voice = pipeline.encode_prompt(args.audio, args.text)
    path = voice.save(args.output)
    print(f"wrote {path} ({voice.num_frames} frames, transcript: {voice.transcript!r})")
    return EXIT_OK


COMMANDS = {"plugins": cmd_plugins, "config": cmd_config, "synth": cmd_synth, "voice": cmd_voice}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = COMMANDS.get(args.command) or args.handler
        return handler(args)
    except ConfigError as error:
        print(f"voxpipe: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except VoxpipeError as error:
        print(f"voxpipe: error: {error}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # unexpected: keep the traceback available for bug reports
        if os.environ.get("VOXPIPE_DEBUG"):
            raise
        print(f"voxpipe: internal error: {type(error).__name__}: {error} (set VOXPIPE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
