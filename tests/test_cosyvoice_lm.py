"""CosyVoice speech-token LM: parity with the official `Qwen2LM.inference` (log-probs and sampled
tokens given a seeded RNG), strict loading of `llm.pt`, the hyper-parameter reader.

Cases: every `lm_*/manifest.json` under tests/fixtures/cosyvoice/ and, when VOXPIPE_FIXTURES is
set, under $VOXPIPE_FIXTURES/cosyvoice/ too (e.g. the official full-size configs). Made by
tests/fixtures/cosyvoice/generate_lm_stream.py from an official checkout.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.cosyvoice.hyperparams import (
    SamplingConfig,
    parse_hyperparams,
    read_hyperparams,
)
from voxpipe.plugins.cosyvoice.lm import CosyVoiceLM, ras_sampling
from voxpipe.testing.threads import one_torch_thread

HERE = Path(__file__).resolve().parent / "fixtures" / "cosyvoice"


def fixture_cases(prefix: str, kind: str) -> list[Path]:
    """Case folders `<prefix>*/` whose manifest has this `kind`, committed and under $VOXPIPE_FIXTURES."""
    roots = [HERE]
    if os.environ.get("VOXPIPE_FIXTURES"):
        roots.append(Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "cosyvoice")
    return sorted(path.parent for root in roots for path in root.glob(f"{prefix}*/manifest.json")
                  if json.loads(path.read_text()).get("kind") == kind)


LM_CASES = fixture_cases("lm_", "lm")
TINY = HERE / "lm_tiny" / "model"
TINY_CV3 = HERE / "lm_cv3_tiny"


def test_committed_lm_cases_exist():
    assert [case for case in LM_CASES if case.parent == HERE], "no lm_* case under tests/fixtures/cosyvoice"


@pytest.fixture(scope="module")
def loaded_lms():
    return {}


def load_case(case: Path, cache: dict):
    if case not in cache:
        manifest = json.loads((case / "manifest.json").read_text())
        expected = json.loads((case / manifest["expected"]).read_text())
        lm = CosyVoiceLM.create(model_dir=str(case / manifest["model_dir"]), **manifest.get("sampling", {}),
                                **manifest.get("lm_params", {}))
        cache[case] = (lm, manifest, expected)
    return cache[case]


@pytest.mark.parametrize("case", LM_CASES, ids=[c.name for c in LM_CASES])
def test_lm_matches_official(case, loaded_lms):
    lm, manifest, expected = load_case(case, loaded_lms)
    tolerance = manifest["tolerance"]["logprobs_abs"]
    with one_torch_thread():
        for run in expected["runs"]:
            seen: dict[int, torch.Tensor] = {}
            generator = torch.Generator().manual_seed(run["seed"])
            tokens = list(lm.generate(expected["text"], expected["prompt_text"], expected["prompt_speech_tokens"],
                                      generator=generator, on_logprobs=seen.__setitem__))
            for step, official in enumerate(run["logprobs"]):
                torch.testing.assert_close(seen[step], torch.tensor(official), atol=tolerance, rtol=0)
            assert tokens == run["tokens"], f"seed {run['seed']}"


@pytest.mark.parametrize("case", LM_CASES, ids=[c.name for c in LM_CASES])
def test_text_tokenizer_matches_official(case):
    from voxpipe.plugins.cosyvoice.text import CosyVoiceTextTokenizer

    manifest = json.loads((case / "manifest.json").read_text())
    expected = json.loads((case / manifest["expected"]).read_text())
    if "tokenizer" not in manifest.get("checks", []):
        pytest.skip(f"{case.name} records no tokenizer check")
    tokenizer = CosyVoiceTextTokenizer.create(path=str(case / manifest["model_dir"] / "CosyVoice-BlankEN"),
                                              version=manifest.get("tokenizer_version", "cosyvoice2"))
    for text, ids in expected["tokenizer"].items():
        assert tokenizer.encode(text) == ids, text


def test_same_seed_same_tokens_and_first_logprobs():
    lm = CosyVoiceLM.create(model_dir=str(TINY))
    text, prompt = [11, 23, 5, 87], [3, 17, 17]
    with one_torch_thread():
        runs = [list(lm.generate(text, [9], prompt, generator=torch.Generator().manual_seed(5))) for _ in range(2)]
        other = list(lm.generate(text, [9], prompt, generator=torch.Generator().manual_seed(6)))
        first = lm.first_logprobs(text, [9], prompt)
    assert runs[0] == runs[1] and runs[0] != other
    assert first.shape == (lm.speech_token_size + 3,)
    assert all(0 <= t < lm.speech_token_size for t in runs[0])
    _min_len, max_len = lm.lengths.bounds(len(text))
    assert len(runs[0]) <= max_len


def test_max_length_caps_generation():
    lm = CosyVoiceLM.create(model_dir=str(TINY), max_token_text_ratio=1.0, min_token_text_ratio=1.0)
    with one_torch_thread():
        tokens = list(lm.generate([1, 2, 3], generator=torch.Generator().manual_seed(0)))
    assert len(tokens) == 3  # min = max = 3: the eos is masked until the cap


def test_ras_sampling_falls_back_on_repetition():
    scores = torch.full((10,), -50.0)
    scores[4] = 0.0  # nucleus always draws 4
    scores = scores.log_softmax(0)
    config = SamplingConfig(top_p=0.8, top_k=25, win_size=10, tau_r=0.1)
    generator = torch.Generator().manual_seed(0)
    assert ras_sampling(scores.clone(), [1, 2], config, generator) == 4
    repeated = scores.clone()
    token = ras_sampling(repeated, [4], config, generator)  # 4 seen once in the window: masked
    assert token != 4 and repeated[4] == -float("inf")


def test_wrong_checkpoint_keys_name_them(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    state = torch.load(folder / "llm.pt", weights_only=True)
    state["extra.weight"] = torch.zeros(1)
    del state["llm_embedding.weight"]
    torch.save(state, folder / "llm.pt")
    with pytest.raises(WeightsError, match=r"missing keys: llm_embedding.weight.*unexpected keys: extra.weight"):
        CosyVoiceLM.create(model_dir=str(folder))


def test_missing_files_are_named(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    (folder / "llm.pt").unlink()
    with pytest.raises(WeightsError, match=r"llm.pt.*lm.weights"):
        CosyVoiceLM.create(model_dir=str(folder))
    with pytest.raises(ConfigError, match="model_dir"):
        CosyVoiceLM.create(weights=str(TINY / "llm.pt"))  # no yaml, no folder


def test_unloaded_lm_says_what_to_set():
    lm = CosyVoiceLM.create()
    assert not lm.loaded
    with pytest.raises(ConfigError, match="model_dir"):
        list(lm.generate([1]))


# ---- CosyVoice3 ----------------------------------------------------------------------------------
def cv3_lm(**params):
    manifest = json.loads((TINY_CV3 / "manifest.json").read_text())
    return CosyVoiceLM.create(model_dir=str(TINY_CV3 / "model"), **{**manifest["lm_params"], **params})


def test_cv3_layout_and_stop_rows():
    lm = cv3_lm()
    size = lm.speech_token_size
    assert lm.variant == "CosyVoice3LM" and not hasattr(lm.model, "llm_embedding")
    assert lm.model.llm_decoder.bias is None and lm.model.llm_decoder.out_features == size + 200
    assert lm.model.stop_tokens == frozenset(range(size, size + 200))
    assert (lm.model.sos, lm.model.eos, lm.model.task_id, lm.model.min_len_masked) == (size, size + 1, size + 2, size)
    assert lm.first_logprobs([5, lm.endofprompt_id]).shape == (size + 200,)


def test_cv3_needs_endofprompt():
    lm = cv3_lm()
    with pytest.raises(ConfigError, match=rf"<\|endofprompt\|> \(id {lm.endofprompt_id}, lm.endofprompt_id\)"):
        next(lm.generate([11, 23], [9, 44]))
    with one_torch_thread():  # in the text instead of the prompt text is fine too
        next(lm.generate([11, lm.endofprompt_id, 23], [9, 44], generator=torch.Generator().manual_seed(0)))
    assert CosyVoiceLM.create(model_dir=str(TINY_CV3 / "model")).endofprompt_id == 151646  # the official vocabulary's


def test_cv3_checkpoint_in_cv2_layout_is_refused(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(TINY_CV3 / "model", folder)
    shutil.copy(TINY / "llm.pt", folder / "llm.pt")  # a CosyVoice2 checkpoint beside cosyvoice3.yaml
    with pytest.raises(WeightsError, match=r"CosyVoice3LM.*unexpected keys: .*llm_embedding.weight"):
        CosyVoiceLM.create(model_dir=str(folder))


# ---- hyper-parameters read as data ---------------------------------------------------------
def test_hyperparams_of_the_fixture():
    params = read_hyperparams(TINY / "cosyvoice2.yaml")
    state = torch.load(TINY / "llm.pt", weights_only=True)
    assert params.lm.variant == "Qwen2LM"
    assert state["llm_decoder.weight"].shape == (params.lm.speech_token_size + 3, params.lm.llm_output_size)
    assert params.sample_rate == 24000 and "__set_seed1" in params.ignored


def test_hyperparams_expressions_and_refs():
    params = parse_hyperparams("a: 25\nb: 2\nc: !ref <a> * <b>\nd: !ref <a>\n"
                               "hift: !new:cosyvoice.hifigan.generator.HiFTGenerator\n"
                               "  in_channels: 80\n  sampling_rate: 24000\n  upsample_rates: [8, 5, 3]\n"
                               "  istft_params: {n_fft: 16, hop_len: 4}\n")
    assert params.tree["c"] == 50 and params.tree["d"] == 25
    assert params.hift.hop_length == 480


def test_hyperparams_name_the_version_and_tokenizer_set():
    params = read_hyperparams(TINY_CV3 / "model" / "cosyvoice3.yaml")
    assert params.version == "cosyvoice3" and params.tokenizer_version == "cosyvoice3"
    assert read_hyperparams(TINY / "cosyvoice2.yaml").version == "cosyvoice2"
    text = "get_tokenizer: !name:cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer\n  version: cosyvoice9\n"
    with pytest.raises(ConfigError, match=r"/x/cosyvoice3.yaml: key 'get_tokenizer.version' is 'cosyvoice9'"):
        parse_hyperparams(text, "/x/cosyvoice3.yaml")


@pytest.mark.parametrize("text, message", [
    ("x: !python/object:os.system [ls]\n", r"unknown tag '!python/object:os.system' at key 'x'"),
    ("llm: !new:os.system\n  a: 1\n", r"unknown class path 'os.system' in tag !new: at key 'llm'"),
    ("a: !apply:cosyvoice.flow.flow.CausalMaskedDiffWithXvec [1]\n", r"!apply:.* at key 'a' would run code"),
    ("a: !ref <nope>\n", r"!ref <nope> at key 'a'.*no such key"),
    ("a: 1\nb: !ref <a> + __import__('os')\n", "only arithmetic"),
])
def test_hyperparams_refuse_what_they_do_not_know(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_hyperparams(text, "/some/cosyvoice2.yaml")
    assert "/some/cosyvoice2.yaml" in str(error.value)
