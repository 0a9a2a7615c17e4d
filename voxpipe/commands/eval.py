"""`voxpipe eval`: measure pipelines on a test set (voxpipe.eval), or compare two results."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="measure intelligibility (WER/CER), speaker similarity, DNSMOS and speed of pipelines",
        description="Synthesize a test set with one or more pipelines (or read existing audio) and report "
                    "WER/CER (Whisper), speaker similarity (Resemblyzer), DNSMOS and real-time factor as JSON, "
                    "Markdown and PNG plots; or compare two results with bootstrap confidence intervals.")
    parser.add_argument("--config", "-c", action="append", default=[],
                        help="pipeline YAML file or bundled name (repeatable: one run per config; default kokoro)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value in every pipeline, e.g. solver.num_steps=8 (repeatable)")
    parser.add_argument("--label", action="append", default=[],
                        help="name of each run, in the order of --config then --audio-dir (default: derived)")
    parser.add_argument("--weights-dir", default=None, help="local copy of the official weight layouts")
    parser.add_argument("--audio-dir", action="append", default=[], type=Path,
                        help="evaluate existing audio <DIR>/<item id>.wav instead of synthesizing (repeatable)")
    parser.add_argument("--test-set", default="english",
                        help="built-in set (english, arctic) or a .jsonl/.tsv file (default english)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items")
    parser.add_argument("--sample", type=int, default=None,
                        help="only N items spread evenly over the set (the same ones every time)")
    parser.add_argument("--voice", default=None, help="built-in voice name or .voice file for items that name none")
    parser.add_argument("--prompt", type=Path, default=None,
                        help="prompt audio for cloning pipelines when an item has no reference audio")
    parser.add_argument("--prompt-text", default=None, help="transcript of --prompt")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed and bootstrap seed (default 0)")
    parser.add_argument("--recognizer", default="whisper", help="recognizer component, or 'none' (default whisper)")
    parser.add_argument("--asr-model", default=None,
                        help="the recognizer's model: tiny.en (default), base, or a CTranslate2 model directory")
    parser.add_argument("--speaker-encoder", default="resemblyzer",
                        help="speaker encoder component, or 'none' (default resemblyzer)")
    parser.add_argument("--quality", default="dnsmos", help="quality predictor component, or 'none' (default dnsmos)")
    parser.add_argument("--metric-option", action="append", default=[], metavar="KIND.KEY=VALUE",
                        help="parameter of an instrument, e.g. recognizer.beam_size=1 (repeatable)")
    parser.add_argument("-o", "--output-dir", type=Path, default=None,
                        help="where results.json, report.md and plots/ go (required unless --compare)")
    parser.add_argument("--keep-audio", action="store_true", help="also write every clip to <output-dir>/audio/")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="compare two results (file.json or file.json#label): deltas B - A with bootstrap CIs")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of --compare (default 2000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence level of --compare (default 0.95)")
    parser.add_argument("--quiet", action="store_true", help="no per-item progress lines")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from voxpipe.commands.common import EXIT_OK

    if args.compare:
        return _compare(args)
    from voxpipe.commands.common import UsageError
    from voxpipe.eval.plots import write_plots
    from voxpipe.eval.report import (
        markdown_report,
        markdown_table,
        write_json,
        write_text_atomic,
    )
    from voxpipe.eval.runner import VoiceChoice, build_instruments, evaluate
    from voxpipe.eval.testset import load_test_set

    if args.output_dir is None:
        raise UsageError("voxpipe eval needs -o/--output-dir (or --compare A B)")
    if args.prompt_text and not args.prompt:
        raise UsageError("--prompt-text needs --prompt")
    if args.limit is not None and args.sample is not None:
        raise UsageError("give --limit or --sample, not both")
    try:  # before any model loads: a run must not end unable to write its results
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"-o {args.output_dir}: cannot create the output directory: {error.strerror or error}") from None
    test_set = load_test_set(args.test_set).limited(args.limit).spread(args.sample)
    runs = _run_specs(args)
    names = {kind: None if value.lower() == "none" else value for kind, value in
             (("recognizer", args.recognizer), ("speaker_encoder", args.speaker_encoder), ("quality", args.quality))}
    options = _instrument_options(args.metric_option)
    if args.asr_model is not None:
        options.setdefault("recognizer", {})["model"] = args.asr_model
    instruments = build_instruments(names, options)
    document = evaluate(
        test_set, runs, instruments, seed=args.seed,
        voices=VoiceChoice(voice=args.voice, prompt=args.prompt, prompt_text=args.prompt_text),
        weights_dir=args.weights_dir, audio_out=args.output_dir / "audio" if args.keep_audio else None,
        progress=None if args.quiet else lambda message: print(message, file=sys.stderr, flush=True),
    )
    written = [write_json(document, args.output_dir / "results.json"),
               write_text_atomic(args.output_dir / "report.md", markdown_report(document))]
    if not args.no_plots:
        written += write_plots(document, args.output_dir / "plots")
    print(markdown_table(document), end="")
    print(f"wrote {', '.join(str(p) for p in written[:2])} and {len(written) - 2} plot(s)", file=sys.stderr)
    return EXIT_OK


def _run_specs(args):
    from voxpipe.commands.common import DEFAULT_CONFIG, UsageError
    from voxpipe.eval.runner import RunSpec

    configs = list(args.config) or ([] if args.audio_dir else [DEFAULT_CONFIG])
    count = len(configs) + len(args.audio_dir)
    if args.label and len(args.label) != count:
        raise UsageError(f"--label given {len(args.label)} time(s) for {count} run(s); give one per run or none")
    labels = list(args.label) or [Path(c).stem for c in configs] + [Path(d).name or str(d) for d in args.audio_dir]
    specs = [RunSpec(label, config=config, overrides=list(args.overrides)) for label, config in zip(labels, configs)]
    specs += [RunSpec(label, audio_dir=directory) for label, directory in zip(labels[len(configs):], args.audio_dir)]
    return specs


def _instrument_options(entries: list[str]) -> dict[str, dict]:
    """["recognizer.beam_size=1"] -> {"recognizer": {"beam_size": 1}} (values parsed as YAML scalars)."""
    import yaml

    from voxpipe.commands.common import UsageError

    options: dict[str, dict] = {}
    for entry in entries:
        key, separator, value = entry.partition("=")
        kind, dot, name = key.partition(".")
        if not separator or not dot or not name:
            raise UsageError(f"--metric-option {entry!r}: expected KIND.KEY=VALUE, e.g. recognizer.beam_size=1")
        options.setdefault(kind, {})[name] = yaml.safe_load(value) if value else value
    return options


def _compare(args) -> int:
    import json

    from voxpipe.commands.common import EXIT_OK
    from voxpipe.eval.compare import compare_files, markdown_comparison
    from voxpipe.eval.report import write_text_atomic

    result = compare_files(args.compare[0], args.compare[1], resamples=args.resamples,
                           confidence=args.confidence, seed=args.seed)
    print(markdown_comparison(result), end="")
    if args.output_dir is not None:
        path = write_text_atomic(args.output_dir / "comparison.json", json.dumps(result.to_dict(), indent=1) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK
