"""End-to-end parity with the official LuxTTS and ZipVoice pipelines, through the public API.

Data-driven: every case in `<fixtures>/e2e/manifest.json` (fixtures root = VOXPIPE_FIXTURES or
tests/fixtures). The pipeline is built from the bundled YAML (configs/<pipeline>.yaml) pointed
with `weights_dir` at a local copy of the official Hugging Face layout assembled from the folders
the case names in the manifest (`cases.<case>.model`, one of `models`; the vocoder the official
pipeline loaded), so the hf:// locations, strict loading and settings of the shipped configs are
what is tested. Stages are compared from their stored inputs, then the whole synthesize() call.

Tolerances (float32 throughout):
- token ids, frame counts: exact;
- prompt RMS: 1e-5 relative;
- prompt features from the file (load, resample, silence removal, mel): 99 % of values within
  2e-4 and all within 0.02 (= 0.2 nats x feature scale 0.1). ZipVoice's prompt goes through a
  16-bit round trip in silence removal: a 6e-8 resampler difference flips a few samples by one
  16-bit step, which the log amplifies in near-silent bins (docs/audio.md);
- generated features from stored prompt/ids/x0: 1e-4 absolute (+1e-4 relative);
- waveforms from stored features: 1e-4 absolute; end-to-end waveform: 1e-4 absolute.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from voxpipe.core.pipeline import Pipeline
from voxpipe.core.voice import Voice
from voxpipe.testing.fixtures import (
    assemble_official_layout,
    case_models,
    fixtures_root,
)

E2E = fixtures_root() / "e2e"
MANIFEST = json.loads((E2E / "manifest.json").read_text()) if (E2E / "manifest.json").is_file() else {"cases": {}}
CASES = sorted(MANIFEST["cases"])

def settings_of(case: dict) -> dict:
    """Sampling arguments and pipeline-settings overrides of a manifest case."""
    if case["pipeline"] == "luxtts":
        gen, enc = case["generate"], case["encode"]
        return {
            "config": "luxtts",
            "sampling": dict(num_steps=gen["num_steps"], guidance_scale=gen["guidance_scale"], t_shift=gen["t_shift"], speed=gen["speed"]),
            "overrides": {"synthesizer.prompt_max_seconds": enc["duration"], "synthesizer.prompt_target_rms": enc["rms"]},
        }
    args = case["args"]
    return {
        "config": case["model_name"],
        "sampling": dict(num_steps=args["num_step"], guidance_scale=args["guidance_scale"], t_shift=args["t_shift"], speed=args["speed"]),
        "overrides": {"synthesizer.prompt_target_rms": args["target_rms"], "synthesizer.output_target_rms": args["target_rms"]},
    }


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    name = request.param
    spec = MANIFEST["cases"][name]
    setup = settings_of(spec)
    root = assemble_official_layout(tmp_path_factory.mktemp(name), spec["pipeline"], spec.get("model_name", ""),
                                    case=name)
    pipeline = Pipeline.from_config(setup["config"], setup["overrides"], weights_dir=str(root))
    data = dict(np.load(E2E / f"{name}.npz"))
    return name, spec, setup, pipeline, data


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize("name", CASES)
def test_case_folders_hold_the_recorded_files(name):
    """The folders a case is built from are the ones its manifest names, file for file (sha256 of
    `models.<folder>`): a case must never run on another case's model."""
    folders = case_models(name, manifest=MANIFEST)
    listed = MANIFEST["models"]
    model_key = MANIFEST["cases"][name]["model"]
    vocoder_key = next((key for key in listed if (E2E / key).resolve() == folders.vocoder), None)
    checks = [(folders.model, listed[model_key])]
    if vocoder_key is not None:  # a vocoder inside the model folder is checked with the model's files
        checks.append((folders.vocoder, listed[vocoder_key]))
    for folder, files in checks:
        for relative, expected in files.items():
            assert sha256_of(folder / relative) == expected, f"{name}: {folder / relative} differs from the manifest"


def stored_voice(data, spec) -> Voice:
    """The official run's prompt as a flow-matching voice payload."""
    length = int(data["prompt_features_lens"][0])
    return Voice(
        "flow-matching",
        {"prompt_features": torch.from_numpy(data["prompt_features"][0, :length]).to(torch.float32),
         "prompt_token_ids": torch.from_numpy(data["prompt_token_ids"].reshape(-1)).to(torch.int64)},
        {"transcript": spec["record"]["prompt_text"], "prompt_rms": float(data["prompt_rms"]),
         "settings": {"sample_rate": 24000, "num_samples": _prompt_samples(data)}},
    )


def family_call(pipeline, data, spec, **sampling):
    """(family, resolved voice, options) for the stored prompt and the case's sampling."""
    family = pipeline.synthesizer
    return family, family.resolve_voice(stored_voice(data, spec)), family.options(sampling)


def _prompt_samples(data) -> int:
    for key in ("prompt_wav_normed", "prompt_wav_trimmed", "prompt_wav_24k"):
        if key in data:
            return int(data[key].shape[-1])
    raise KeyError("prompt waveform")


def batches_of(name, spec, data):
    """[(token id lists, x0, features_lens, pred_features, pred_lens)] per generation batch."""
    if spec["pipeline"] == "luxtts":
        return [([data["token_ids"].tolist()], data["x0"], data["features_lens"], data["pred_features"], data["pred_features_lens"])]
    record = spec["record"]
    out, i = [], 0
    while f"b{i}_x0" in data:
        out.append((record[f"b{i}"]["token_ids"], data[f"b{i}_x0"], data[f"b{i}_features_lens"],
                    data[f"b{i}_pred_features"], data[f"b{i}_pred_features_lens"]))
        i += 1
    return out


def test_prompt_encoding(case):
    name, spec, setup, pipeline, data = case
    voice = pipeline.encode_prompt(E2E / MANIFEST["prompt_wav"], text=spec["record"]["prompt_text"])
    assert voice.prompt_token_ids == data["prompt_token_ids"].reshape(-1).tolist()
    np.testing.assert_allclose(voice.prompt_rms, float(data["prompt_rms"]), rtol=1e-5)
    assert voice.num_frames == int(data["prompt_features_lens"][0])
    error = np.abs(voice.prompt_features.numpy() - data["prompt_features"][0])
    assert error.max() <= 0.02 and np.quantile(error, 0.99) <= 2e-4, (error.max(), np.quantile(error, 0.99))


def test_text_tokens(case):
    name, spec, setup, pipeline, data = case
    family, voice, options = family_call(pipeline, data, spec, **setup["sampling"])
    chunks = pipeline.plan_chunks([spec["text"]], family.chunk_budget(voice, options))
    assert [i for c in chunks for i in c.token_ids] == data["token_ids"].reshape(-1).tolist()


def test_generated_features(case):
    name, spec, setup, pipeline, data = case
    family, voice, options = family_call(pipeline, data, spec, **setup["sampling"])
    for token_ids, x0, features_lens, pred, pred_lens in batches_of(name, spec, data):
        generated = family.generate_features(voice, token_ids, options, noise=torch.from_numpy(x0))
        assert [g.shape[0] for g in generated] == pred_lens.tolist()
        assert [g.shape[0] + voice.num_frames for g in generated] == features_lens.tolist()
        for item, expected, length in zip(generated, pred, pred_lens):
            np.testing.assert_allclose(item.numpy(), expected[:length], atol=1e-4, rtol=1e-4)


def test_waveform_from_stored_features(case):
    name, spec, setup, pipeline, data = case
    family, voice, _ = family_call(pipeline, data, spec)
    waves = [family.decode(torch.from_numpy(pred[:length]), voice)
             for _, _, _, preds, lens in batches_of(name, spec, data) for pred, length in zip(preds, lens)]
    if spec["pipeline"] == "luxtts":
        np.testing.assert_allclose(waves[0].numpy(), data["wav"], atol=1e-4)
    else:
        order = spec["record"]["chunk_index"]
        in_text_order = [w for _, w in sorted(zip(order, waves), key=lambda pair: pair[0])]
        from voxpipe.dsp.crossfade import crossfade_concat

        concat = crossfade_concat(in_text_order, int(pipeline.settings.crossfade_seconds * family.sample_rate))
        np.testing.assert_allclose(concat.numpy(), data["concat_wav"], atol=1e-4)


def test_synthesize_end_to_end(case):
    name, spec, setup, pipeline, data = case
    noise = [torch.from_numpy(b[1]) for b in batches_of(name, spec, data)]
    audio = pipeline.synthesize(spec["text"], stored_voice(data, spec), noise=noise, **setup["sampling"])
    expected = data["wav"].reshape(-1)
    assert audio.sample_rate == spec["record"].get("sample_rate_saved", pipeline.sample_rate)
    assert audio.num_samples == expected.shape[0]
    np.testing.assert_allclose(audio.samples.numpy(), expected, atol=1e-4)
