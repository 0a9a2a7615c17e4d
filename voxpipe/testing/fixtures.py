"""Where parity fixtures live: $VOXPIPE_FIXTURES, else the repository's tests/fixtures.

The same parity tests run unchanged on any directory of the same layout (`zipvoice/`,
`vocoders/`, `e2e/`), e.g. fixtures made from full-size official configs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

FIXTURES_ENV = "VOXPIPE_FIXTURES"
REPOSITORY_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def fixtures_root() -> Path:
    env = os.environ.get(FIXTURES_ENV)
    return Path(env).expanduser() if env else REPOSITORY_FIXTURES


# -- end-to-end cases: which model folders each one uses ------------------------------------------
E2E_MANIFEST = "manifest.json"
OFFICIAL_PIPELINES = ("luxtts", "zipvoice")
LUXTTS_VOCODER_CHECKPOINT = "vocos.bin"  # 48 kHz LuxTTS vocoder (LuxTTS reads <model dir>/vocoder/)
VOCOS24K_CHECKPOINT = "pytorch_model.bin"  # 24 kHz Vocos (ZipVoice's --vocoder-path)


@dataclass(frozen=True)
class CaseModels:
    """The folders one e2e case was recorded with, resolved against `<root>/e2e/`."""

    model: Path  # acoustic model: model.pt + config/model.json + tokens.txt (+ LuxTTS's vocoder/)
    vocoder: Path  # vocoder folder (config.yaml + checkpoint)


def e2e_manifest(root: Path | None = None) -> dict:
    path = (root or fixtures_root()) / "e2e" / E2E_MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no e2e manifest: {path}") from None


def case_models(case: str, root: Path | None = None, manifest: dict | None = None) -> CaseModels:
    """Model and vocoder folders of `cases.<case>` in `<root>/e2e/manifest.json`.

    The acoustic model is the folder the case names (`cases.<case>.model`), which must be one of
    the folders the manifest lists under `models` (with their files' sha256). The vocoder is
    what the official pipeline loaded: LuxTTS reads `<model>/vocoder/` when the model folder has
    one, else the listed folder holding `vocos.bin`; ZipVoice the case's `--vocoder-path`
    (`record.argv`), else the listed folder holding `pytorch_model.bin`.
    """
    e2e = (root or fixtures_root()) / "e2e"
    manifest = manifest if manifest is not None else e2e_manifest(root)
    where = e2e / E2E_MANIFEST
    cases, listed = manifest.get("cases", {}), manifest.get("models", {})
    if case not in cases:
        raise KeyError(f"{where}: no case {case!r} under 'cases' (has {sorted(cases)})")
    spec = cases[case]
    pipeline = spec.get("pipeline")
    if pipeline not in OFFICIAL_PIPELINES:
        raise ValueError(f"{where}: cases.{case}.pipeline is {pipeline!r}; expected one of {OFFICIAL_PIPELINES}")
    model_name = spec.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"{where}: cases.{case}.model must name a model folder, got {model_name!r}")
    if model_name not in listed:
        raise ValueError(f"{where}: cases.{case}.model = {model_name!r} is not a folder listed under "
                         f"'models' (listed: {sorted(listed)})")
    model = _existing_folder(e2e / model_name, f"{where}: cases.{case}.model")

    if pipeline == "luxtts":
        own = model / "vocoder"
        vocoder = own if own.is_dir() else _listed_folder_with(e2e, listed, LUXTTS_VOCODER_CHECKPOINT, where)
    else:
        argv = spec.get("record", {}).get("argv") or []
        given = argv[argv.index("--vocoder-path") + 1] if "--vocoder-path" in argv[:-1] else None
        vocoder = (_existing_folder(e2e / given, f"{where}: cases.{case}.record.argv --vocoder-path") if given
                   else _listed_folder_with(e2e, listed, VOCOS24K_CHECKPOINT, where))
    return CaseModels(model=model, vocoder=vocoder)


def _existing_folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: folder {path} does not exist")
    return path.resolve()


def _listed_folder_with(e2e: Path, listed: dict, checkpoint: str, where: Path) -> Path:
    """The folder under `models` whose file list has `checkpoint` at its top level."""
    folders = [name for name, files in listed.items() if checkpoint in files]
    if len(folders) != 1:
        raise ValueError(f"{where}: expected exactly one folder under 'models' holding {checkpoint}, "
                         f"found {folders}")
    return _existing_folder(e2e / folders[0], f"{where}: models.{folders[0]}")


def default_case(pipeline: str, model_name: str = "zipvoice_distill", manifest: dict | None = None,
                 root: Path | None = None) -> str:
    """The first manifest case of `pipeline` (for ZipVoice: with `model_name`)."""
    manifest = manifest if manifest is not None else e2e_manifest(root)
    for name, spec in sorted(manifest.get("cases", {}).items()):
        if spec.get("pipeline") == pipeline and (pipeline != "zipvoice" or spec.get("model_name") == model_name):
            return name
    wanted = pipeline if pipeline != "zipvoice" else f"zipvoice with model_name {model_name!r}"
    raise LookupError(f"the e2e manifest of {root or fixtures_root()} has no {wanted} case")


# Official Hugging Face layouts, assembled from a fixtures root (what `--weights-dir` points at).
def assemble_official_layout(destination: Path, pipeline: str, model_name: str = "zipvoice_distill",
                             root: Path | None = None, *, case: str | None = None) -> Path:
    """Copy an e2e case's model and vocoder folders into `destination` laid out as the official
    repositories: LuxTTS -> YatharthS/LuxTTS/{model.pt, config.json, tokens.txt, vocoder/};
    ZipVoice -> k2-fsa/ZipVoice/<model_name>/ + charactr/vocos-mel-24khz/.

    The folders are the ones the manifest names for `case` (see `case_models`); without a case,
    the first case of that pipeline (and ZipVoice model name) is used. A LuxTTS model folder that
    already holds `vocoder/` (as LuxTTS ships) brings it along; otherwise the case's vocoder is
    copied in as `vocoder/`.
    """
    import shutil

    if pipeline not in OFFICIAL_PIPELINES:
        raise ValueError(f"unknown official pipeline {pipeline!r}; expected 'luxtts' or 'zipvoice'")
    root = root or fixtures_root()
    manifest = e2e_manifest(root)
    case = case or default_case(pipeline, model_name, manifest, root)
    spec = manifest.get("cases", {}).get(case, {})
    if spec.get("pipeline") != pipeline:
        raise ValueError(f"e2e case {case!r} is a {spec.get('pipeline')!r} case, not {pipeline!r}")
    if pipeline == "zipvoice" and spec.get("model_name") != model_name:
        raise ValueError(f"e2e case {case!r} was recorded with model_name {spec.get('model_name')!r}, "
                         f"not {model_name!r}")
    folders = case_models(case, root, manifest)
    if pipeline == "luxtts":
        repo = destination / "YatharthS" / "LuxTTS"
        shutil.copytree(folders.model, repo)
        if not (repo / "vocoder").exists():
            shutil.copytree(folders.vocoder, repo / "vocoder")
    else:
        shutil.copytree(folders.model, destination / "k2-fsa" / "ZipVoice" / model_name)
        shutil.copytree(folders.vocoder, destination / "charactr" / "vocos-mel-24khz")
    return destination


E2E_PROMPT = "cmu_arctic_a0009.wav"
E2E_PROMPT_TEXT = "He turned sharply, and faced Gregson across the table."


FAMILY_SECTIONS = ("features", "acoustic_model", "guidance", "solver", "vocoder")


def tiny_pipeline_config(root: Path | None = None, **sections) -> dict:
    """A LuxTTS-shaped pipeline on the small e2e fixture model and the small 24 kHz Vocos: fast,
    offline, random weights (noise-like audio, real plumbing). `sections` replace whole entries:
    top-level ones (tokenizer, chunker, settings, ...) and the flow-matching family's own
    (features, acoustic_model, guidance, solver, vocoder, or any of its parameters)."""
    root = root or fixtures_root()
    family = {
        "type": "flow-matching",
        "features": {"type": "vocos-mel"},
        "acoustic_model": {"type": "zipvoice-distill", "weights": str(root / "e2e" / "model")},
        "guidance": {"type": "distilled", "scale": 3.0},
        "solver": {"type": "euler", "num_steps": 4},
        "vocoder": {"type": "vocos-24k", "weights": str(root / "vocoders" / "vocos24k")},
    }
    config = {
        "tokenizer": {"type": "emilia", "tokens": str(root / "e2e" / "model" / "tokens.txt")},
        "chunker": {"type": "punctuation"},
        "synthesizer": family,
    }
    top_level = {"normalizer", "chunker", "tokenizer", "transcriber", "settings", "synthesizer"}
    for key, value in sections.items():
        (config if key in top_level else family)[key] = value
    return config
