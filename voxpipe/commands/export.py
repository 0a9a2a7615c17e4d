"""`voxpipe export onnx CONFIG -o DIR [--int8]`: a pipeline's acoustic model and vocoder as ONNX.

DIR receives the acoustic-model graphs (+ tokens.txt, model.json), `vocoder.onnx` (the vocoder's
network; the inverse STFT stays in torch), `export.json` (files, int8 deviations) and
`pipeline.yaml` (and with --int8 `pipeline_int8.yaml`): the source pipeline with its acoustic model
replaced by the onnxruntime backend pointing at DIR, ready for `voxpipe synth --config DIR/pipeline.yaml`.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="export a pipeline's models to another runtime")
    formats = export.add_subparsers(dest="export_format", metavar="FORMAT")
    formats.required = True
    onnx = formats.add_parser("onnx", help="ONNX graphs for onnxruntime (opset >= 17, dynamic time axis)")
    onnx.add_argument("config", help="pipeline YAML file or bundled name (luxtts, zipvoice, zipvoice_distill)")
    onnx.add_argument("-o", "--output", required=True, help="directory to write the graphs to")
    onnx.add_argument("--int8", action="store_true", help="also write int8 dynamically quantized graphs")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    onnx.add_argument("--no-vocoder", action="store_true", help="export the acoustic model only")
    onnx.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value, e.g. acoustic_model.weights=DIR (repeatable)")
    onnx.add_argument("--weights-dir", default=None, help="local copy of the official weight layouts")
    onnx.set_defaults(handler=run_export_onnx)


def run_export_onnx(args) -> int:
    from voxpipe.core.errors import ConfigError

    if args.opset < 17:
        raise ConfigError(f"--opset {args.opset}: voxpipe exports need opset >= 17")
    report = export_pipeline_onnx(args.config, args.output, int8=args.int8, overrides=args.overrides,
                                  weights_dir=args.weights_dir, opset=args.opset, vocoder=not args.no_vocoder)
    for role, path in report["files"].items():
        print(f"{role:>18}: {path}")
    for role, deviation in report["int8_max_abs_deviation"].items():
        print(f"int8 {role}: max |int8 - fp32| = {deviation:.3g} x max |fp32| on example inputs")
    for precision, path in report["pipelines"].items():
        print(f"pipeline ({precision}): {path}")
    return 0


def export_pipeline_onnx(config, output, *, int8: bool = False, overrides=(), weights_dir: str | None = None,
                         opset: int = 17, vocoder: bool = True) -> dict:
    """Build the acoustic model (and vocoder) of `config` in torch and export them to `output`."""
    import yaml

    from voxpipe.core.config import build_config
    from voxpipe.core.errors import ConfigError
    from voxpipe.core.files import write_text_atomically
    from voxpipe.export.onnx import VOCODER_FILE, export_acoustic_model, export_vocoder, write_manifest

    config = build_config(config, overrides, weights_dir=weights_dir)
    family = config.components["synthesizer"]
    acoustic = family.children.get("acoustic_model")
    counterpart = getattr(acoustic.info.cls, "onnx_counterpart", None) if acoustic is not None else None
    if counterpart is None:
        found = acoustic.info.name if acoustic else f"none (synthesizer {family.info.name!r})"
        raise ConfigError(f"{config.source}: ONNX export needs an acoustic model that declares an onnxruntime "
                          f"counterpart (`onnx_counterpart`), e.g. zipvoice or zipvoice-distill; this one is {found!r}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model = acoustic.build("synthesizer.acoustic_model")
    result = export_acoustic_model(model, output, int8=int8, opset=opset)
    if vocoder and "vocoder" in family.children:
        component = family.children["vocoder"]
        result.files["vocoder"] = export_vocoder(component.build("synthesizer.vocoder"), output / VOCODER_FILE, opset)
    pipelines = {}
    for precision in ("fp32", "int8") if int8 else ("fp32",):
        path = output / ("pipeline.yaml" if precision == "fp32" else "pipeline_int8.yaml")
        data = _onnx_pipeline(config, acoustic, output, precision)
        write_text_atomically(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        pipelines[precision] = str(path)
    write_manifest(result, {"source_config": str(config.source), "pipelines": pipelines})
    return {
        "files": {role: str(path) for role, path in result.files.items()},
        "int8_max_abs_deviation": result.int8_deviation,
        "pipelines": pipelines,
    }


def _onnx_pipeline(config, acoustic, output: Path, precision: str) -> dict:
    """The resolved source pipeline with the onnxruntime acoustic model. The guided ZipVoice
    graph takes the guidance scale as an input, so classifier-free guidance becomes 'distilled'
    with the same scale."""
    data = config.to_dict()
    family = data["synthesizer"]
    family["acoustic_model"] = {"type": acoustic.info.cls.onnx_counterpart, "weights": str(output.resolve()),
                                "precision": precision}
    guidance = family.get("guidance")
    if guidance is not None and guidance.get("type") != "distilled":
        family["guidance"] = {"type": "distilled", "scale": guidance.get("scale", 1.0)}
    return data
