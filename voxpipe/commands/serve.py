"""`voxpipe serve`: the OpenAI-compatible speech server (voxpipe.server) on uvicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    from voxpipe.commands.common import add_config_args

    parser = subparsers.add_parser(
        "serve", help="serve POST /v1/audio/speech (OpenAI-compatible), GET /v1/voices, GET /health")
    add_config_args(parser)
    parser.add_argument("--voices", metavar="DIR", default=None,
                        help="directory of .voice files (voxpipe voice create), offered by file stem")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-input-chars", type=int, default=4096, help="longest accepted input (default 4096)")
    parser.add_argument("--seed", type=int, default=None,
                        help="noise seed of requests without one (default: the config's settings.seed, else random)")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="largest request body accepted, refused with 413 before parsing (default 1048576)")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' on every request but /health (default: "
                             "$VOXPIPE_API_KEY; prefer the variable: arguments are visible to other users)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(handler=run)


def run(args) -> int:
    from voxpipe.commands.common import EXIT_OK, UsageError, load_config, load_pipeline

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
    if args.max_body_bytes is not None and args.max_body_bytes <= 0:
        raise UsageError(f"--max-body-bytes {args.max_body_bytes}: expected a positive number of bytes")
    limits = {"max_body_bytes": args.max_body_bytes} if args.max_body_bytes is not None else {}
    api_key = resolve_api_key(args.api_key)
    warning = exposure_warning(args.host, api_key)
    if warning:
        print(f"voxpipe: warning: {warning}", file=sys.stderr)
    pipeline = load_pipeline(load_config(args))
    voices = VoiceCatalog.load(pipeline, args.voices)
    if voices.ignored:
        print(f"voxpipe: note: {len(voices.ignored)} .voice file(s) ignored: synthesizer "
              f"{pipeline.synthesizer.name!r} cannot use them", file=sys.stderr)
    name = getattr(pipeline.config, "source", None) or "voxpipe"
    settings = ServerSettings(max_input_chars=args.max_input_chars, seed=args.seed, api_key=api_key,
                              model_name=Path(str(name)).stem, **limits)  # the config's name, not its path
    app = create_app(pipeline, voices, settings)
    print(f"voxpipe: serving {len(voices.names)} voice(s) at {pipeline.sample_rate} Hz on "
          f"http://{args.host}:{args.port}/v1/audio/speech ({args.arithmetic})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return EXIT_OK


API_KEY_ENV = "VOXPIPE_API_KEY"


def resolve_api_key(given: str | None) -> str | None:
    """--api-key, else $VOXPIPE_API_KEY; empty means none."""
    return given or os.environ.get(API_KEY_ENV) or None


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """The warning for a server other machines can reach without a key (None otherwise)."""
    from voxpipe.server.guard import is_loopback

    if api_key or is_loopback(host):
        return None
    return (f"--host {host} accepts connections from other machines and no API key is set: anyone who "
            f"reaches it can use it. Set {API_KEY_ENV} (or --api-key), or bind 127.0.0.1")
