"""`voxpipe batch MANIFEST -o OUTDIR`: synthesize every item of a manifest, resumably.

See docs/batch.md for the manifest format, the results manifest and the Ray engine.
"""

from __future__ import annotations

import signal
import sys


def register(subparsers) -> None:
    from voxpipe.commands.common import add_config_args

    parser = subparsers.add_parser(
        "batch", help="synthesize a manifest (JSONL/CSV/TSV of id, text, voice, options, seed) to OUTDIR")
    parser.add_argument("manifest", help="JSONL, CSV or TSV file of items {id, text, voice?, options?, seed?}")
    parser.add_argument("-o", "--output-dir", required=True,
                        help="directory of the audio files (ID.wav) and results.jsonl; a rerun skips finished items")
    add_config_args(parser)
    parser.add_argument("--voice", default=None,
                        help="voice of rows without one: a .voice file or a built-in voice name")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local worker processes (default) or a Ray Data actor pool (pip install 'voxpipe[ray]')")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes / Ray actors, each loading the pipeline once (default: one per "
                             "CPU, at most 4; local 0 = in this process)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: the CPUs divided among the workers)")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to connect to ('auto', 'ray://HOST:10001'); default: start a local one")
    parser.add_argument("--num-gpus-per-worker", type=float, default=0.0, help="GPUs each Ray actor reserves")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or notes")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from voxpipe.batch import make_engine, run_batch
    from voxpipe.commands.common import EXIT_OK, EXIT_RUNTIME, UsageError, overrides_of

    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: expected 1 or more")
    if args.engine == "local" and (args.ray_address or args.num_gpus_per_worker):
        raise UsageError("--ray-address and --num-gpus-per-worker need --engine ray")
    engine = make_engine(args.engine, args.workers, ray_address=args.ray_address,
                         gpus_per_worker=args.num_gpus_per_worker, threads=args.threads)
    note = (lambda message: None) if args.quiet else (lambda message: print(f"voxpipe: {message}", file=sys.stderr))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl-C
    try:
        summary = run_batch(args.manifest, args.output_dir, args.config, overrides=overrides_of(args),
                            weights_dir=args.weights_dir, engine=engine, threads=args.threads, voice=args.voice,
                            progress=not args.quiet, log=note)
    except KeyboardInterrupt:
        print(f"voxpipe: interrupted; finished items are kept in {args.output_dir}; run the same command again "
              "to continue", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    rate = summary.audio_seconds / summary.wall_seconds if summary.wall_seconds else 0.0
    print(f"{summary.synthesized} synthesized, {summary.skipped} already done, {summary.failed} failed "
          f"({summary.audio_seconds:.1f} s of audio in {summary.wall_seconds:.1f} s, {rate:.2f} audio-s/s); "
          f"results: {summary.results_path}")
    for row in summary.failures[:10]:
        print(f"  failed {row['id']}: {row['error']}", file=sys.stderr)
    return EXIT_RUNTIME if summary.failed else EXIT_OK


def _interrupt(signum, frame):
    raise KeyboardInterrupt
