"""CosyVoice2/3 streaming token-to-wave (voxpipe/plugins/cosyvoice/token2wav.py).

- `stream_toy_*` cases: the OFFICIAL `CosyVoice2Model.tts(stream=True/False)` run on the
  deterministic toy flow / HiFT of tests/fixtures/cosyvoice/stream_toy_models.py; voxpipe's
  `Token2Wav` on the same toys must give the same chunks bit for bit (schedule, offsets, caches,
  fades, finalize). Discovered under tests/fixtures/cosyvoice/ and $VOXPIPE_FIXTURES/cosyvoice/.
- unit tests of the chunk schedule, the caches and the push-granularity invariance.
- `stream_*` cases of kind `stream` (e.g. stream_tiny, CosyVoice2; stream_cv3_tiny, CosyVoice3 with
  the DiT flow and the causal HiFT): the official LM -> `CosyVoice2Model` / `CosyVoice3Model.tts`
  whole and streamed on tiny official weights; voxpipe's LM + Token2Wav give the same tokens and
  PCM (and so does the family, through `stream_chunks` / `synthesize`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.plugins.cosyvoice.token2wav import (
    COSYVOICE3_SILENT_TOKENS,
    StreamSettings,
    Token2Wav,
    fade_in_out,
    limit_silent_tokens,
)

HERE = Path(__file__).resolve().parent / "fixtures" / "cosyvoice"


def fixture_cases(prefix: str) -> list[Path]:
    roots = [HERE]
    if os.environ.get("VOXPIPE_FIXTURES"):
        roots.append(Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "cosyvoice")
    return sorted(path.parent for root in roots for path in root.glob(f"{prefix}*/manifest.json"))


def toy_models(path: Path):
    spec = importlib.util.spec_from_file_location("cosyvoice_stream_toy_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOY = toy_models(HERE / "stream_toy_models.py")
TOY_CASES = fixture_cases("stream_toy_")


def test_committed_stream_cases_exist():
    assert [case for case in TOY_CASES if case.parent == HERE]


@pytest.mark.parametrize("case", TOY_CASES, ids=[c.name for c in TOY_CASES])
def test_streaming_orchestration_matches_official(case):
    manifest = json.loads((case / "manifest.json").read_text())
    models = toy_models(case.parent / manifest["models"]) if (case.parent / manifest["models"]).is_file() else TOY
    data = np.load(case / manifest["expected"])
    settings = StreamSettings(**manifest.get("settings", {}))
    prompt = torch.from_numpy(data["prompt_tokens"])
    feat, embedding = torch.from_numpy(data["prompt_feat"]), torch.from_numpy(data["embedding"])
    tokens = data["tokens"].tolist()
    flow = models.ToyFlow()
    streamed = list(Token2Wav(flow, models.ToyHiFT(), prompt, feat, embedding, settings).stream(iter(tokens)))
    assert flow.calls == manifest["flow_calls"]
    assert [c.shape[1] for c in streamed] == manifest["chunk_samples"]
    for index, chunk in enumerate(streamed):
        np.testing.assert_array_equal(chunk.numpy(), data[f"chunk_{index}"], err_msg=f"chunk {index}")
    if "whole" in data:
        whole = Token2Wav(models.ToyFlow(), models.ToyHiFT(), prompt, feat, embedding, settings).whole(tokens)
        np.testing.assert_array_equal(whole.numpy(), data["whole"])


# ---- unit tests on the toys ---------------------------------------------------------------------------
def make(prompt_len=7, settings=None):
    generator = torch.Generator().manual_seed(prompt_len)
    prompt = torch.randint(0, 100, (1, prompt_len), generator=generator, dtype=torch.int32)
    feat = torch.randn(1, 2 * prompt_len, TOY.MEL_BINS, generator=generator)
    flow = TOY.ToyFlow()
    settings = settings or StreamSettings(vocoder_hop=TOY.HOP)  # cache = 8 toy frames
    return Token2Wav(flow, TOY.ToyHiFT(), prompt, feat, torch.ones(1, 192), settings), flow


def test_chunk_schedule_pads_the_prompt_then_doubles_the_hop():
    t2w, flow = make(prompt_len=7)  # pad 18: first chunk after 25 + 18 + 3 tokens
    assert t2w.next_chunk_needs() == 46
    assert t2w.push(range(45)) == []
    assert len(t2w.push([45])) == 1 and t2w.offset == 43
    assert t2w.next_chunk_needs() == 43 + 50 + 3
    t2w.push(range(46, 400))
    assert t2w.chunk_token_ends == [46, 96, 196, 296, 396]  # hops 43, 50, 100, 100, ...
    assert all(call["streaming"] and not call["finalize"] for call in flow.calls)
    t2w.finish()
    assert flow.calls[-1] == {"tokens": 400, "streaming": False, "finalize": True}


def test_first_audio_leaves_after_the_first_hop_and_holds_back_the_cache():
    t2w, _ = make(prompt_len=25)  # no pad
    first = t2w.push(range(28))
    hop = TOY.HOP
    # 25 tokens -> 50 mel frames; the last source_cache_len (8 frames x hop) samples are held back
    assert [c.shape[1] for c in first] == [50 * hop - 8 * hop]
    assert t2w.cache.mel.shape[2] == 8 and t2w.cache.source.shape[2] == 8 * hop
    assert t2w.cache.speech.shape[1] == 8 * hop


def test_fade_mixes_held_back_speech_into_the_next_chunk():
    window = StreamSettings(mel_cache_len=1, vocoder_hop=4).speech_window()
    new, previous = torch.ones(1, 10), torch.full((1, 6), 2.0)
    out = fade_in_out(new, previous, window)
    half = window.shape[0] // 2
    expected = (window[:half] + 2.0 * window[half:]).float()
    torch.testing.assert_close(out[0, :half], expected)
    assert torch.equal(out[0, half:], new[0, half:]) and torch.equal(new, torch.ones(1, 10))


@pytest.mark.parametrize("pieces", [1, 3, 17, 400])
def test_same_pcm_however_tokens_are_pushed(pieces):
    tokens = torch.randint(0, 100, (150,), generator=torch.Generator().manual_seed(3)).tolist()
    reference, _ = make()
    expected = torch.cat(reference.push(tokens) + [reference.finish()], dim=1)
    t2w, _ = make()
    chunks = []
    for part in np.array_split(np.array(tokens), pieces):
        chunks += t2w.push(part.tolist())
    chunks.append(t2w.finish())
    assert torch.equal(torch.cat(chunks, dim=1), expected)


def test_streamed_total_length_equals_whole():
    tokens = list(range(1, 131))
    streamed, _ = make()
    total = sum(c.shape[1] for c in streamed.stream(iter(tokens)))
    whole, _ = make()
    assert total == whole.whole(tokens).shape[1] == 2 * len(tokens) * TOY.HOP


def test_misuse_is_refused():
    t2w, _ = make()
    t2w.finish()
    with pytest.raises(RuntimeError, match="finish"):
        t2w.push([1])
    with pytest.raises(RuntimeError, match="already"):
        t2w.finish()
    used, _ = make()
    used.push([1])
    with pytest.raises(RuntimeError, match="fresh"):
        used.whole([1, 2])


# ---- the real tiny CosyVoice2 (official LM, flow, HiFT on tiny random weights) -----------------------
STREAM_CASES = [case for case in fixture_cases("stream_")
                if json.loads((case / "manifest.json").read_text()).get("kind") == "stream"]


def test_committed_real_stream_case_exists():
    assert [case for case in STREAM_CASES if case.parent == HERE]


@pytest.mark.parametrize("case", STREAM_CASES, ids=[c.name for c in STREAM_CASES])
def test_lm_flow_hift_streamed_and_whole_match_official(case):
    from voxpipe.plugins.cosyvoice.flow import CosyVoiceFlow
    from voxpipe.plugins.cosyvoice.hift import CosyVoiceHift
    from voxpipe.plugins.cosyvoice.lm import CosyVoiceLM
    from voxpipe.testing.threads import one_torch_thread

    manifest = json.loads((case / "manifest.json").read_text())
    for relative, digest in manifest.get("made_from", {}).items():  # weights shared with other cases
        weights = case / relative
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest, (
            f"{case.name} was made from another {relative}: regenerate it (generate_lm_stream.py)")
    data = np.load(case / manifest["expected"])
    tolerance = manifest["tolerance"]["pcm_abs"]
    seed = manifest["seed"]
    with one_torch_thread():
        lm = CosyVoiceLM.create(model_dir=str(case / manifest["lm_dir"]), **manifest.get("lm_params", {}))
        flow = CosyVoiceFlow.create(model_dir=str(case / manifest["flow_dir"]))
        hift = CosyVoiceHift.create(model_dir=str(case / manifest["hift_dir"]), **manifest.get("hift_params", {}))
        prompt = torch.from_numpy(data["prompt_tokens"])
        tokens = list(lm.generate(manifest["text"], manifest["prompt_text"], prompt[0].tolist(),
                                  generator=torch.Generator().manual_seed(seed)))
        assert tokens == data["tokens"].tolist()
        if manifest.get("version") == "cosyvoice3":  # what the official llm_job hands the flow
            tokens = list(limit_silent_tokens(tokens, COSYVOICE3_SILENT_TOKENS))
        feat, embedding = torch.from_numpy(data["prompt_feat"]), torch.from_numpy(data["embedding"])
        settings = StreamSettings(vocoder_hop=hift.hop_length, **manifest.get("settings", {}))

        def token2wav():
            generator = None if hift.causal else torch.Generator().manual_seed(seed)
            return Token2Wav(flow, hift, prompt, feat, embedding, settings, vocoder_generator=generator)

        whole = token2wav().whole(tokens)
        np.testing.assert_allclose(whole.numpy(), data["whole"], atol=tolerance, rtol=0)
        streamed = list(token2wav().stream(iter(tokens)))
    assert [c.shape[1] for c in streamed] == manifest["chunk_samples"]
    for index, chunk in enumerate(streamed):
        np.testing.assert_allclose(chunk.numpy(), data[f"chunk_{index}"], atol=tolerance, rtol=0,
                                   err_msg=f"chunk {index}")


# ---- CosyVoice3 specifics -------------------------------------------------------------------------------
def test_silent_tokens_are_limited_as_the_official_llm_job():
    silent = frozenset({1, 2})
    tokens = [5, 1, 2, 1, 1, 2, 1, 2, 1, 7, 2, 2, 9]
    # the 6th and later silent tokens of a run are dropped; a non-silent token resets the run
    assert list(limit_silent_tokens(tokens, silent, max_run=5)) == [5, 1, 2, 1, 1, 2, 7, 2, 2, 9]
    assert list(limit_silent_tokens(tokens, frozenset())) == tokens
    assert {1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323} == COSYVOICE3_SILENT_TOKENS


class _RecordingCausalHift:
    """Stands in for the causal HiFT's stream: records what token2wav pushes."""

    causal = True

    def __init__(self):
        self.pushed = []

    def causal_stream(self):
        return self

    def push(self, mel, finalize=False):
        self.pushed.append((mel.shape[2], finalize))
        return torch.zeros(1, mel.shape[2])


def test_causal_vocoder_gets_only_new_mel_and_no_cache_or_fade():
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 100, (1, 25), generator=generator, dtype=torch.int32)
    flow, vocoder = TOY.ToyFlow(), _RecordingCausalHift()
    t2w = Token2Wav(flow, vocoder, prompt, torch.randn(1, 50, TOY.MEL_BINS, generator=generator), torch.ones(1, 192),
                    StreamSettings(vocoder_hop=TOY.HOP))
    t2w.push(range(120))
    t2w.finish()
    # hops 25, 50 tokens -> 50, 100 new mel frames; the rest (45 tokens) finalizes; no cached frames
    assert vocoder.pushed == [(50, False), (100, False), (90, True)]
    with pytest.raises(ValueError, match="no vocoder_generator"):
        Token2Wav(flow, vocoder, prompt, torch.zeros(1, 50, TOY.MEL_BINS), torch.ones(1, 192),
                  vocoder_generator=torch.Generator())
