"""Weight locations: local paths, hf:// under a local root, and offline errors."""

import pytest

from voxpipe.core.errors import WeightsError
from voxpipe.core.weights import HubLocation, resolve_path


def test_parse_hub_uri():
    hub = HubLocation.parse("hf://k2-fsa/ZipVoice@abc123/zipvoice_distill/model.pt")
    assert (hub.repo_id, hub.revision, hub.path) == ("k2-fsa/ZipVoice", "abc123", "zipvoice_distill/model.pt")
    with pytest.raises(WeightsError, match="hf://org/repo"):
        HubLocation.parse("hf://just-org")


def test_local_root_layouts(tmp_path):
    (tmp_path / "ZipVoice" / "zipvoice_distill").mkdir(parents=True)
    assert resolve_path("hf://k2-fsa/ZipVoice/zipvoice_distill", local_root=tmp_path) == tmp_path / "ZipVoice" / "zipvoice_distill"
    with pytest.raises(WeightsError) as caught:
        resolve_path("hf://k2-fsa/ZipVoice/zipvoice_dialog", local_root=tmp_path)
    assert "zipvoice_dialog" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_missing_local_path_names_it(tmp_path):
    with pytest.raises(WeightsError, match="absent.pt"):
        resolve_path(tmp_path / "absent.pt")


def test_offline_without_cache_names_repo_file_and_remedy(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("VOXPIPE_WEIGHTS_DIR", raising=False)
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        with pytest.raises(WeightsError) as caught:
            resolve_path("hf://YatharthS/LuxTTS/model.pt")
    finally:
        importlib.reload(huggingface_hub.constants)
    message = str(caught.value)
    assert "YatharthS/LuxTTS" in message and "model.pt" in message and "--weights-dir" in message
