"""`voxpipe train RECIPE.yaml` and `voxpipe data prepare` (docs/training.md).

    voxpipe data prepare RECIPE_OR_PIPELINE (--tsv FILE | --dir DIR) -o OUTDIR
    voxpipe train RECIPE.yaml [--set training.max_steps=100] [--no-resume] [--check]
    torchrun --nproc_per_node N $(which voxpipe) train RECIPE.yaml     # DistributedDataParallel
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train or fine-tune an acoustic model from a recipe (runs under torchrun too)")
    train.add_argument("recipe", help="recipe YAML: a pipeline plus data, optim, schedule, checkpoint, training sections")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, e.g. training.max_steps=100 (repeatable)")
    train.add_argument("--no-resume", action="store_true", help="start over even if checkpoint.dir has checkpoints")
    train.add_argument("--check", action="store_true", help="validate the recipe and exit")
    train.set_defaults(handler=run_train)

    data = subparsers.add_parser("data", help="prepare training data (lhotse manifests)")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    prepare = actions.add_parser("prepare", help="TSV (id, text, wav) or a directory of wav + txt -> lhotse manifests "
                                 "with features and token ids")
    prepare.add_argument("config", help="recipe or pipeline YAML whose tokenizer and synthesizer.features are used")
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument("--tsv", help="id<TAB>text<TAB>wav rows (ZipVoice's custom format)")
    source.add_argument("--dir", help="directory of NAME.wav files with NAME.txt transcripts")
    prepare.add_argument("-o", "--output", required=True, help="directory for the manifests and features")
    prepare.add_argument("--min-seconds", type=float, default=0.5, help="shorter clips are skipped (reported)")
    prepare.add_argument("--max-seconds", type=float, default=30.0, help="longer clips are skipped (reported)")
    prepare.add_argument("--storage", choices=("lilcom", "numpy"), default="lilcom",
                         help="lhotse feature storage: lilcom (compressed, as ZipVoice) or numpy (exact)")
    prepare.set_defaults(handler=run_prepare)


def run_train(args) -> int:
    from voxpipe.training.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.check:
        print(f"{args.recipe}: valid recipe; checkpoints in {recipe.directory}")
        return 0
    from voxpipe.training.trainer import train

    result = train(recipe, resume=not args.no_resume)
    if result.pipeline is not None:
        resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
        loss = "n/a" if result.loss is None else f"{result.loss:.4f}"
        print(f"trained to step {result.step}, epoch {result.epoch}, last loss {loss}{resumed}")
        print(f"checkpoint: {result.checkpoint}")
        print(f"pipeline: {result.pipeline}  (voxpipe synth --config {result.pipeline} ...)")
    return 0


def run_prepare(args) -> int:
    from voxpipe.core.errors import ConfigError
    from voxpipe.training.data import prepare_from_pipeline, rows_from

    rows = rows_from(args.tsv, args.dir)
    pipeline = _pipeline_of(args.config)
    report = prepare_from_pipeline(pipeline, rows, args.output, min_seconds=args.min_seconds,
                                   max_seconds=args.max_seconds, storage=args.storage)
    print(report.summary(Path(args.output).resolve()))
    if report.kept == 0:
        raise ConfigError(f"no usable rows in {args.tsv or args.dir}; reasons in {Path(args.output) / 'rejected.tsv'}")
    return 0


def _pipeline_of(config: str):
    """A recipe's pipeline, or a pipeline file's."""
    from voxpipe.core.config import build_config, find_config, read_yaml
    from voxpipe.training.recipe import RECIPE_KEYS, load_recipe

    path = find_config(config)
    if any(key in RECIPE_KEYS for key in read_yaml(path)):
        return load_recipe(path).pipeline
    return build_config(path)
