"""`voxpipe` command line: a thin shell over the Python API.

Exit codes: 0 success; 2 usage or configuration error (one message, no traceback);
1 runtime failure (missing weights, unreadable audio, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from voxpipe.commands.common import (
    DEFAULT_CONFIG,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    UsageError,
    add_config_args,
    add_option_args,
    check_output,
    load_config,
    load_pipeline,
    options_of,
    read_text_file,
)
from voxpipe.core.errors import ConfigError, VoxpipeError

__all__ = ["DEFAULT_CONFIG", "EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "UsageError", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 itself; keep our one-line format
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voxpipe", description="Plugin-based text-to-speech.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    plugins = commands.add_parser("plugins", help="list every registered component and plugin load failures")
    plugins.add_argument("--options", metavar="SYNTHESIZER", default=None,
                         help="list the per-call options (-O key=value) a synthesizer takes")
    plugins.add_argument("--cpu", action="store_true",
                         help="print the CPU model, its speed-relevant features and what --precision auto picks")

    config = commands.add_parser("config", help="validate, show or list pipeline files")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    config_commands.required = True
    for action, text in (("validate", "check a pipeline file"), ("show", "print the fully resolved pipeline")):
        sub = config_commands.add_parser(action, help=text)
        sub.add_argument("file")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    config_commands.add_parser("list", help="list the bundled pipelines")

    synth = commands.add_parser("synth", help="synthesize speech to a sound file")
    add_config_args(synth)
    source = synth.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="text to speak")
    source.add_argument("--text-file", help="file with the text to speak (UTF-8)")
    synth.add_argument("--prompt", action="append", help="prompt audio of the voice to clone (dialog models: "
                       "give it twice, speaker 1 then speaker 2)")
    synth.add_argument("--prompt-text", action="append",
                       help="transcript of the prompt, once per --prompt (transcribed offline when omitted)")
    synth.add_argument("--voice", help="a .voice file (voxpipe voice create), or a built-in voice name")
    synth.add_argument("-o", "--output", required=True, help="output sound file (.wav, .flac, .ogg, .mp3)")
    add_option_args(synth)
    synth.add_argument("--quiet", action="store_true", help="no progress bar")

    voice = commands.add_parser("voice", help="encode and save voice prompts")
    voice_commands = voice.add_subparsers(dest="voice_command", metavar="ACTION", parser_class=_Parser)
    voice_commands.required = True
    create = voice_commands.add_parser("create", help="encode a prompt once into a .voice file")
    create.add_argument("audio", nargs="+", help="prompt audio (two files for a dialog model's two speakers)")
    create.add_argument("--text", action="append", help="transcript, once per audio (transcribed offline when omitted)")
    create.add_argument("-o", "--output", required=True)
    add_config_args(create)

    from voxpipe.registry import get_registry

    get_registry().register_commands(commands)  # serve, export, batch, eval and plugins' own
    return parser


# ---- command implementations -------------------------------------------------------------------
def cmd_plugins(args) -> int:
    from voxpipe.registry import get_registry

    registry = get_registry()
    if args.options is not None:
        return _print_options(registry, args.options)
    if getattr(args, "cpu", False):
        from voxpipe.core.cpu import detect
        from voxpipe.core.native import describe as describe_native_kernels
        from voxpipe.core.precision import AUTO_KERNELS, choose_precision

        cpu = detect()
        print(f"cpu: {cpu.summary()}")
        print(f"vector level: {cpu.vector_level}; native bf16: {'yes' if cpu.has_bf16 else 'no'}; "
              f"int8 dot products (VNNI/AMX): {'yes' if cpu.has_int8_dot else 'no'}")
        torch_auto = choose_precision("auto", ("fp32", "bf16"), cpu)
        print(f"--precision auto: torch {torch_auto} with {AUTO_KERNELS} kernels (vocoder body "
              f"{torch_auto}, its spectrum heads fp32; Kokoro in torch: decoder {torch_auto}); "
              f"onnx {choose_precision('auto', ('fp32', 'int8'), cpu)} (int8 only when asked)")
        print(f"native kernels (the fused kernels' element-wise chains): {describe_native_kernels()}")
        return EXIT_OK
    rows = [("KIND", "NAME", "PACKAGE", "VERSION", "DESCRIPTION")]
    rows += [(i.kind, i.name, i.package, i.version, i.description) for i in registry.components()]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:4])) + "  " + row[4])
    plugin_kinds = [kind for kind in registry.kinds.values() if kind.plugin != "voxpipe"]
    if plugin_kinds:
        print("\nkinds added by plugins: " + ", ".join(f"{k.name} ({k.plugin})" for k in plugin_kinds))
    if registry.failures:
        print("\nplugins that failed to load:")
        for failure in registry.failures:
            print(f"  {failure.plugin} ({failure.package}): {failure.error}")
    return EXIT_OK


def _print_options(registry, name: str) -> int:
    info = registry.get("synthesizer", name)
    fields = info.cls.Options.model_fields
    print(f"per-call options of synthesizer {name!r} (-O key=value):" if fields else f"synthesizer {name!r} takes no options")
    for key, field in fields.items():
        print(f"  {key}: {field.description or ''}")
    return EXIT_OK


def cmd_config(args) -> int:
    from voxpipe.core.config import build_config, bundled_configs

    if args.config_command == "list":
        for name, path in sorted(bundled_configs().items()):
            print(f"{name}  {path}")
        return EXIT_OK
    config = build_config(args.file, args.overrides)
    if args.config_command == "validate":
        print(f"{config.source}: OK ({', '.join(config.components)})")
    else:
        print(config.to_yaml(), end="")
    return EXIT_OK


def cmd_synth(args) -> int:
    from voxpipe.core.voice import Voice

    if args.prompt and args.voice:
        raise UsageError("give either --prompt or --voice, not both")
    text = args.text if args.text is not None else read_text_file(args.text_file)
    voice_file = args.voice if args.voice and Path(args.voice).suffix == ".voice" else None
    check_output(args.output, [*(args.prompt or []), voice_file, args.text_file])
    config = load_config(args)
    options = options_of(args, config)
    family = config.components["synthesizer"]
    if args.prompt and not family.info.cls.configured_to_clone(family.params):
        raise UsageError(f"synthesizer {config.components['synthesizer'].info.name!r} has built-in voices and "
                         "takes no --prompt; choose one with --voice NAME")
    if len(text) > config.settings.max_text_chars:
        raise UsageError(f"the text has {len(text)} characters; one call takes at most "
                         f"{config.settings.max_text_chars} (settings.max_text_chars: --set settings.max_text_chars=N)")
    voice = Voice.load(voice_file) if voice_file else args.voice  # a bad voice file fails before the model loads
    if not args.quiet:
        print(f"voxpipe: {args.arithmetic}", file=sys.stderr)
    pipeline = load_pipeline(config)
    if args.prompt:
        voice = pipeline.encode_prompt(args.prompt, args.prompt_text)
    audio = pipeline.synthesize(text, voice, seed=args.seed, progress=not args.quiet, **options)
    path = audio.save(args.output)
    print(f"wrote {path} ({audio.duration:.2f} s, {audio.sample_rate} Hz, {audio.num_channels} channel(s))")
    return EXIT_OK


def cmd_voice(args) -> int:
    check_output(args.output, args.audio, audio=False)
    if Path(args.output).suffix != ".voice":
        raise UsageError(f"-o/--output {args.output}: voice files end in .voice")
    config = load_config(args)
    family = config.components["synthesizer"].info
    if not family.cls.configured_to_clone(config.components["synthesizer"].params):
        raise UsageError(f"synthesizer {family.name!r} ({config.source}) does not make voices from audio; "
                         "use a pipeline that clones voices, e.g. --config luxtts")
    pipeline = load_pipeline(config)
    voice = pipeline.encode_prompt(args.audio, args.text)
    path = voice.save(args.output)
    transcript = voice.metadata.get("transcript")
    print(f"wrote {path} (synthesizer {voice.family}" + (f", transcript: {transcript!r})" if transcript else ")"))
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
