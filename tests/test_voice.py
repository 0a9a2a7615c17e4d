"""Voice files: exact round trip, no code execution, clear errors on bad files; version-1 files
still load; the flow-matching family's view of a voice checks its payload field by field."""

import json
import pickle

import pytest
import torch

from voxpipe.core.errors import VoiceFileError
from voxpipe.core.voice import VOICE_FORMAT_VERSION, Voice
from voxpipe.plugins.flow.voice import PromptVoice

FINGERPRINT = {"sample_rate": 24000, "hop_length": 256, "feature_dim": 20, "feat_scale": 0.1, "num_channels": 1}


def make_voice():
    features = torch.randn(37, 20, generator=torch.Generator().manual_seed(0))
    return Voice(
        "flow-matching",
        {"prompt_features": features, "prompt_token_ids": torch.tensor([5, 3, 0, 359], dtype=torch.int64)},
        {"transcript": "Hello, world.", "prompt_rms": 0.0371234567891, "settings": {"sample_rate": 24000, "feat_scale": 0.1}},
        FINGERPRINT,
        24000,
    )


def test_round_trip_is_exact(tmp_path):
    voice = make_voice()
    loaded = Voice.load(voice.save(tmp_path / "a.voice"))
    assert (loaded.family, loaded.sample_rate, loaded.fingerprint) == ("flow-matching", 24000, FINGERPRINT)
    assert loaded.tensors.keys() == voice.tensors.keys()
    assert all(torch.equal(loaded.tensors[k], voice.tensors[k]) for k in voice.tensors)
    assert loaded.metadata == voice.metadata
    # the flow-matching family's typed view reads the same values back
    prompt = PromptVoice.from_voice(loaded, feature_dim=20, vocab_size=360)
    assert torch.equal(prompt.prompt_features, voice.tensors["prompt_features"])
    assert prompt.prompt_token_ids == [5, 3, 0, 359]
    assert prompt.transcript == "Hello, world."
    assert prompt.prompt_rms == 0.0371234567891
    assert prompt.settings == {"sample_rate": 24000, "feat_scale": 0.1}
    assert prompt.num_frames == 37


def write_version_1(path, features, ids, **metadata):
    """A voice file as voxpipe wrote it before format version 2 (flow-matching prompts only)."""
    from safetensors.torch import save_file

    meta = {"format": "voxpipe.voice", "version": "1", "transcript": "Hello, world.", "prompt_rms": repr(0.0371234567891),
            "settings": json.dumps({"sample_rate": 24000, "feat_scale": 0.1}), **metadata}
    save_file({"prompt_features": features, "prompt_token_ids": ids}, str(path), metadata=meta)
    return path


def test_version_1_files_load_as_flow_matching_voices(tmp_path):
    voice = make_voice()
    path = write_version_1(tmp_path / "v1.voice", voice.tensors["prompt_features"], voice.tensors["prompt_token_ids"])
    loaded = Voice.load(path)
    assert (loaded.family, loaded.sample_rate) == ("flow-matching", 24000)
    prompt = PromptVoice.from_voice(loaded, feature_dim=20, vocab_size=None)
    assert torch.equal(prompt.prompt_features, voice.tensors["prompt_features"])
    assert prompt.prompt_token_ids == [5, 3, 0, 359] and prompt.transcript == "Hello, world."
    assert prompt.prompt_rms == 0.0371234567891 and prompt.settings == {"sample_rate": 24000, "feat_scale": 0.1}
    bad = write_version_1(tmp_path / "bad.voice", voice.tensors["prompt_features"], voice.tensors["prompt_token_ids"],
                          prompt_rms="loud")
    with pytest.raises(VoiceFileError, match="bad.voice has unreadable metadata"):
        Voice.load(bad)


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

    meta = {"format": "voxpipe.voice", "version": "99", "family": "flow-matching", "metadata": json.dumps({})}
    save_file({"prompt_features": torch.zeros(3, 4), "prompt_token_ids": torch.zeros(2, dtype=torch.int64)},
              str(tmp_path / "v99.voice"), metadata=meta)
    with pytest.raises(VoiceFileError, match=f"version '99'; this voxpipe reads 1 and {VOICE_FORMAT_VERSION}"):
        Voice.load(tmp_path / "v99.voice")
    # shapes are the family's business: checked by its view of the voice (pipeline.load_voice)
    shape = write_version_1(tmp_path / "shape.voice", torch.zeros(3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(VoiceFileError, match=r"prompt_features is \(3,\) torch.float32; expected \(T, F\) float32"):
        PromptVoice.from_voice(Voice.load(shape), feature_dim=4, vocab_size=None)
    ids = write_version_1(tmp_path / "ids.voice", torch.zeros(3, 4), torch.zeros(2, 1, dtype=torch.int64))
    with pytest.raises(VoiceFileError, match=r"prompt_token_ids is \(2, 1\) torch.int64; expected"):
        PromptVoice.from_voice(Voice.load(ids), feature_dim=4, vocab_size=None)


@pytest.mark.parametrize("header, match", [
    ({"family": ""}, "names no family"),
    ({"metadata": "{not json"}, "metadata 'metadata' is not JSON"),
    ({"fingerprint": "[1, 2]"}, "metadata 'fingerprint' is a list; expected an object"),
    ({"sample_rate": "fast"}, "sample_rate 'fast' is not an integer"),
])
def test_malformed_version_2_headers_are_named(tmp_path, header, match):
    from safetensors.torch import save_file

    meta = {"format": "voxpipe.voice", "version": str(VOICE_FORMAT_VERSION), "family": "flow-matching",
            "sample_rate": "24000", "fingerprint": "{}", "metadata": "{}", **header}
    save_file({"x": torch.zeros(2)}, str(tmp_path / "h.voice"), metadata=meta)
    with pytest.raises(VoiceFileError, match=match):
        Voice.load(tmp_path / "h.voice")


def test_missing_payload_tensors_are_named(tmp_path):
    voice = make_voice()
    path = Voice("flow-matching", {"prompt_features": voice.tensors["prompt_features"]}, voice.metadata).save(
        tmp_path / "half.voice")
    with pytest.raises(VoiceFileError, match=r"lacks tensors \['prompt_token_ids'\]"):
        PromptVoice.from_voice(Voice.load(path), feature_dim=20, vocab_size=None)
