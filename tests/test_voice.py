"""Voice files: exact round trip, no code execution, clear errors on bad files."""

import json
import pickle

import pytest
import torch

from voxpipe.core.errors import VoiceFileError
from voxpipe.core.voice import Voice


def make_voice():
    features = torch.randn(37, 20, generator=torch.Generator().manual_seed(0))
    return Voice(features, [5, 3, 0, 359], "Hello, world.", 0.0371234567891, {"sample_rate": 24000, "feat_scale": 0.1})


def test_round_trip_is_exact(tmp_path):
    voice = make_voice()
    loaded = Voice.load(voice.save(tmp_path / "a.voice"))
    assert torch.equal(loaded.prompt_features, voice.prompt_features)
    assert loaded.prompt_token_ids == voice.prompt_token_ids
    assert loaded.transcript == voice.transcript
    assert loaded.prompt_rms == voice.prompt_rms
    assert loaded.settings == voice.settings


def test_pickle_file_is_rejected_without_running_it(tmp_path):
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.voice"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(VoiceFileError, match="not a readable voice file"):
        Voice.load(path)
    assert not marker.exists()


def test_corrupted_and_foreign_files(tmp_path):
    path = make_voice().save(tmp_path / "a.voice")
    data = path.read_bytes()
    (tmp_path / "cut.voice").write_bytes(data[: len(data) // 2])
    with pytest.raises(VoiceFileError):
        Voice.load(tmp_path / "cut.voice")
    with pytest.raises(VoiceFileError, match="not found"):
        Voice.load(tmp_path / "absent.voice")

    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(VoiceFileError, match="not a voxpipe voice file"):
        Voice.load(tmp_path / "other.safetensors")


def test_wrong_version_and_shapes(tmp_path):
    from safetensors.torch import save_file

    meta = {"format": "voxpipe.voice", "version": "99", "transcript": "", "prompt_rms": "0.1", "settings": json.dumps({})}
    save_file({"prompt_features": torch.zeros(3, 4), "prompt_token_ids": torch.zeros(2, dtype=torch.int64)},
              str(tmp_path / "v99.voice"), metadata=meta)
    with pytest.raises(VoiceFileError, match="version"):
        Voice.load(tmp_path / "v99.voice")
    meta["version"] = "1"
    save_file({"prompt_features": torch.zeros(3), "prompt_token_ids": torch.zeros(2, dtype=torch.int64)},
              str(tmp_path / "shape.voice"), metadata=meta)
    with pytest.raises(VoiceFileError, match="expected"):
        Voice.load(tmp_path / "shape.voice")
