"""The parity suite takes each e2e case's model folders from the manifest, never from fixed paths.

A temporary fixtures root stands in for a full-size set: `e2e/model/` (distilled, holding its
own LuxTTS `vocoder/`), `e2e/zipvoice/` (classifier-free), and the vocoders under `vocoders/`.
Files are small marker files: only which folder lands where is checked here (the parity tests
load the real ones).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxpipe.testing.fixtures import (
    assemble_official_layout,
    case_models,
    fixtures_root,
)

MODEL_FILES = ("model.pt", "model.json", "config.json", "tokens.txt")


def write_folder(folder: Path, files: dict[str, str]) -> dict[str, str]:
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    return {relative: "sha256-not-checked-here" for relative in files}


@pytest.fixture
def full_size_like_root(tmp_path: Path) -> Path:
    """Manifest with a LuxTTS case, a distilled ZipVoice case on `model/` and a classifier-free
    ZipVoice case on `zipvoice/`; `model/` already contains `vocoder/` (as LuxTTS ships it)."""
    e2e = tmp_path / "e2e"
    models = {
        "model": write_folder(e2e / "model", {name: f"distilled {name}" for name in MODEL_FILES}
                              | {"vocoder/vocos.bin": "own 48k vocoder", "vocoder/config.yaml": "own"}),
        "zipvoice": write_folder(e2e / "zipvoice", {name: f"classifier-free {name}" for name in MODEL_FILES}),
        "../vocoders/luxtts_vocoder/vocoder": write_folder(
            tmp_path / "vocoders" / "luxtts_vocoder" / "vocoder", {"vocos.bin": "small 48k", "config.yaml": "small"}),
        "../vocoders/vocos24k": write_folder(
            tmp_path / "vocoders" / "vocos24k", {"pytorch_model.bin": "24k", "config.yaml": "24k"}),
    }
    cases = {
        "luxtts_en": {"pipeline": "luxtts", "model": "model"},
        "zipvoice_distill_en": {"pipeline": "zipvoice", "model": "model", "model_name": "zipvoice_distill",
                                "record": {"argv": ["--model-dir", "model", "--vocoder-path", "../vocoders/vocos24k"]}},
        "zipvoice_en": {"pipeline": "zipvoice", "model": "zipvoice", "model_name": "zipvoice", "record": {}},
    }
    (e2e / "manifest.json").write_text(json.dumps({"cases": cases, "models": models}))
    return tmp_path


def test_zipvoice_case_uses_the_folder_it_names(full_size_like_root: Path, tmp_path: Path):
    layout = assemble_official_layout(tmp_path / "hub", "zipvoice", "zipvoice", full_size_like_root, case="zipvoice_en")
    model = layout / "k2-fsa" / "ZipVoice" / "zipvoice"
    assert (model / "model.pt").read_text() == "classifier-free model.pt"
    assert (layout / "charactr" / "vocos-mel-24khz" / "pytorch_model.bin").read_text() == "24k"


def test_case_found_by_model_name_without_explicit_case(full_size_like_root: Path, tmp_path: Path):
    for name, expected in (("zipvoice", "classifier-free"), ("zipvoice_distill", "distilled")):
        layout = assemble_official_layout(tmp_path / name, "zipvoice", name, full_size_like_root)
        assert (layout / "k2-fsa" / "ZipVoice" / name / "model.pt").read_text() == f"{expected} model.pt"


def test_luxtts_model_folder_with_its_own_vocoder(full_size_like_root: Path, tmp_path: Path):
    """No FileExistsError, and the vocoder LuxTTS itself would load (`<model>/vocoder/`) is kept."""
    layout = assemble_official_layout(tmp_path / "hub", "luxtts", root=full_size_like_root, case="luxtts_en")
    repo = layout / "YatharthS" / "LuxTTS"
    assert (repo / "model.pt").read_text() == "distilled model.pt"
    assert (repo / "vocoder" / "vocos.bin").read_text() == "own 48k vocoder"
    assert case_models("luxtts_en", full_size_like_root).vocoder == (full_size_like_root / "e2e" / "model" / "vocoder").resolve()


def test_luxtts_model_folder_without_vocoder_gets_the_listed_one(full_size_like_root: Path, tmp_path: Path):
    import shutil

    shutil.rmtree(full_size_like_root / "e2e" / "model" / "vocoder")
    layout = assemble_official_layout(tmp_path / "hub", "luxtts", root=full_size_like_root)
    assert (layout / "YatharthS" / "LuxTTS" / "vocoder" / "vocos.bin").read_text() == "small 48k"


def test_vocoder_path_of_the_recorded_command_line(full_size_like_root: Path):
    folders = case_models("zipvoice_distill_en", full_size_like_root)
    assert folders.model == (full_size_like_root / "e2e" / "model").resolve()
    assert folders.vocoder == (full_size_like_root / "vocoders" / "vocos24k").resolve()


def rewrite_manifest(root: Path, edit) -> None:
    path = root / "e2e" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_model_folder_missing_from_models_is_named(full_size_like_root: Path):
    rewrite_manifest(full_size_like_root, lambda m: m["models"].pop("zipvoice"))
    with pytest.raises(ValueError, match=r"cases\.zipvoice_en\.model = 'zipvoice' is not a folder listed under 'models'"):
        case_models("zipvoice_en", full_size_like_root)


def test_listed_folder_absent_on_disk_is_named(full_size_like_root: Path):
    import shutil

    shutil.rmtree(full_size_like_root / "e2e" / "zipvoice")
    with pytest.raises(FileNotFoundError, match=r"cases\.zipvoice_en\.model: folder .*zipvoice does not exist"):
        case_models("zipvoice_en", full_size_like_root)


def test_no_case_for_the_requested_model(full_size_like_root: Path, tmp_path: Path):
    with pytest.raises(LookupError, match="no zipvoice with model_name 'zipvoice_dialog' case"):
        assemble_official_layout(tmp_path / "hub", "zipvoice", "zipvoice_dialog", full_size_like_root)
    with pytest.raises(ValueError, match="'zipvoice_en' is a 'zipvoice' case, not 'luxtts'"):
        assemble_official_layout(tmp_path / "hub", "luxtts", root=full_size_like_root, case="zipvoice_en")
    with pytest.raises(ValueError, match="'zipvoice_en' was recorded with model_name 'zipvoice', not 'zipvoice_distill'"):
        assemble_official_layout(tmp_path / "hub", "zipvoice", "zipvoice_distill", full_size_like_root, case="zipvoice_en")


def test_bundled_manifest_cases_resolve():
    """Every case of the fixture set in use names folders that exist (sha256: test_e2e_parity)."""
    manifest = json.loads((fixtures_root() / "e2e" / "manifest.json").read_text())
    assert manifest["cases"]
    for name in manifest["cases"]:
        folders = case_models(name, manifest=manifest)
        assert folders.model.is_dir() and folders.vocoder.is_dir(), name
