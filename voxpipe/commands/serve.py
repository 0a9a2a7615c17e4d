"""`voxpipe serve`: the OpenAI-compatible speech server (voxpipe.server) on uvicorn."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    from voxpipe.cli import _add_config_args

    parser = subparsers.add_parser(
        "serve", help="serve POST /v1/audio/speech (OpenAI-compatible), GET /v1/voices, GET /health")
    _add_config_args(parser, required=False)
    parser.add_argument("--voices", metavar="DIR", default=None,
                        help="directory of .voice files (voxpipe voice create), offered by file stem")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-input-chars", type=int, default=4096, help="longest accepted input (default 4096)")
    parser.add_argument("--seed", type=int, default=None,
                        help="noise seed of requests without one (default: the config's settings.seed, else random)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(handler=run)


def run(args) -> int:
    from voxpipe.cli import EXIT_OK, UsageError, _load_pipeline

    try:
        import uvicorn

        from voxpipe.server import ServerSettings, VoiceCatalog, create_app
    except ImportError as missing:
        raise UsageError(f"voxpipe serve needs the serve extra ({missing.name} is missing): "
                         "pip install 'voxpipe[serve]'") from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 0-65535")
    if args.max_input_chars <= 0:
        raise UsageError(f"--max-input-chars {args.max_input_chars}: expected a positive number")
    pipeline = _load_pipeline(args)
    voices = VoiceCatalog.load(pipeline, args.voices)
    if voices.ignored:
        print(f"voxpipe: note: {len(voices.ignored)} .voice file(s) ignored: acoustic_model "
              f"{pipeline.acoustic_model.name!r} has its own voices", file=sys.stderr)
    name = getattr(pipeline.config, "source", None) or "voxpipe"
    settings = ServerSettings(max_input_chars=args.max_input_chars, seed=args.seed, model_name=str(name))
    app = create_app(pipeline, voices, settings)
    print(f"voxpipe: serving {len(voices.names)} voice(s) at {pipeline.sample_rate} Hz on "
          f"http://{args.host}:{args.port}/v1/audio/speech", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return EXIT_OK
