"""One conformance class per interface (pytest-style; not collected until subclassed as Test*)."""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel

from voxpipe.core.audio import Audio
from voxpipe.core.conditions import Conditions
from voxpipe.core.errors import ConfigError
from voxpipe.core.text import TextSpan
from voxpipe.registry import get_registry


class ComponentConformance:
    """Checks every component shares: kind, name, Params model, one-line description."""

    def make_component(self):
        raise NotImplementedError("return the component under test")

    def test_declares_registration_metadata(self):
        component = self.make_component()
        cls = type(component)
        assert cls.kind in get_registry().kinds, f"kind {cls.kind!r} is not registered"
        assert cls.name and isinstance(cls.name, str)
        assert issubclass(cls.Params, BaseModel)
        assert cls.Params.model_config.get("extra") == "forbid", "Params must reject unknown keys"
        summary = cls.summary()
        assert summary and "\n" not in summary

    def test_params_reject_unknown_keys(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            type(self.make_component()).Params.model_validate({"surely_not_a_parameter": 1})


class SolverConformance(ComponentConformance):
    """For `Solver`s: implement `make_solver()`."""

    def make_solver(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_solver()

    def test_timesteps_span_the_interval(self):
        solver = self.make_solver()
        for t_start, t_end in ((0.0, 1.0), (0.2, 0.8)):
            times = solver.timesteps(6, 0.5, t_start, t_end)
            assert times.shape == (7,)
            assert torch.all(times[1:] > times[:-1]), "time must increase"
            assert 0.0 <= float(times[0]) and float(times[-1]) <= 1.0 + 1e-6

    def test_constant_field_is_integrated_exactly(self):
        solver = self.make_solver()
        x0 = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
        velocity = torch.linspace(-1, 1, 3)
        for t_start, t_end in ((0.0, 1.0), (0.25, 0.75)):
            times = solver.timesteps(4, 0.7, t_start, t_end)
            x1 = solver.sample(lambda x, t: velocity.expand_as(x), x0, num_steps=4, t_shift=0.7, t_start=t_start, t_end=t_end)
            expected = x0 + velocity * (times[-1] - times[0])
            torch.testing.assert_close(x1, expected, atol=1e-5, rtol=1e-5)

    def test_linear_field_converges(self):
        """dx/dt = -x from t=0 to 1: x1 = x0 / e; more steps must not be worse."""
        solver = self.make_solver()
        x0 = torch.ones(1, 4, 2)
        errors = [
            float((solver.sample(lambda x, t: -x, x0, num_steps=n, t_shift=1.0) - x0 * torch.exp(torch.tensor(-1.0))).abs().max())
            for n in (4, 32)
        ]
        assert errors[1] <= errors[0] and errors[1] < 0.02

    def test_shape_dtype_and_determinism(self):
        solver = self.make_solver()
        x0 = torch.randn(2, 7, 4, generator=torch.Generator().manual_seed(1))
        field = lambda x, t: torch.sin(x) * (1 + t)  # noqa: E731
        first = solver.sample(field, x0, num_steps=3, t_shift=0.5)
        assert first.shape == x0.shape and first.dtype == x0.dtype
        assert torch.equal(first, solver.sample(field, x0, num_steps=3, t_shift=0.5))

    def test_field_gets_scalar_time(self):
        seen = []
        solver = self.make_solver()
        solver.sample(lambda x, t: (seen.append(t), torch.zeros_like(x))[1], torch.zeros(1, 2, 2), num_steps=2, t_shift=1.0)
        assert seen and all(torch.is_tensor(t) and t.dim() == 0 for t in seen)


class GuidanceConformance(ComponentConformance):
    """For `Guidance`: implement `make_guidance()` and `make_model_and_conditions()`."""

    def make_guidance(self):
        raise NotImplementedError

    def make_model_and_conditions(self) -> tuple:
        raise NotImplementedError

    def make_component(self):
        return self.make_guidance()

    def test_field_shape_and_determinism(self):
        guidance = self.make_guidance()
        model, cond = self.make_model_and_conditions()
        x = torch.randn(cond.batch_size, cond.num_frames, model.feature_dim, generator=torch.Generator().manual_seed(0))
        field = guidance.field(model, cond, guidance.scale)
        for t in (0.3, 0.8):
            v = field(x, torch.tensor(t))
            assert v.shape == x.shape and torch.isfinite(v).all()
            assert torch.equal(v, field(x, torch.tensor(t)))


class TokenizerConformance(ComponentConformance):
    """For `Tokenizer`s: implement `make_tokenizer()`; set `sample_texts`."""

    sample_texts: tuple[str, ...] = ("Hello world.", "The quick brown fox, jumped!")

    def make_tokenizer(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_tokenizer()

    def test_encode_gives_vocabulary_ids(self):
        tokenizer = self.make_tokenizer()
        for text in self.sample_texts:
            ids = tokenizer.encode(text)
            assert ids and all(isinstance(i, int) for i in ids)
            if tokenizer.vocab:
                valid = set(tokenizer.vocab.values())
                assert set(ids) <= valid

    def test_deterministic_and_batch_consistent(self):
        tokenizer = self.make_tokenizer()
        texts = list(self.sample_texts)
        assert tokenizer.encode_batch(texts) == [tokenizer.encode(t) for t in texts]
        assert tokenizer.encode(texts[0]) == tokenizer.encode(texts[0])

    def test_tokenize_matches_encode(self):
        tokenizer = self.make_tokenizer()
        if not tokenizer.vocab:
            pytest.skip("tokenizer has no token-string vocabulary")
        for text in self.sample_texts:
            tokens = [t for t in tokenizer.tokenize(text) if t in tokenizer.vocab]
            assert [tokenizer.vocab[t] for t in tokens] == tokenizer.encode(text)


class FeatureExtractorConformance(ComponentConformance):
    """For `FeatureExtractor`s: implement `make_extractor()`."""

    def make_extractor(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_extractor()

    def test_frames_and_shape(self):
        extractor = self.make_extractor()
        for seconds in (0.5, 1.3):
            n = int(seconds * extractor.sample_rate)
            wave = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 0.1
            features = extractor(wave)
            assert features.shape == (extractor.num_frames(n), extractor.feature_dim)
            assert features.dtype == torch.float32 and torch.isfinite(features).all()

    def test_batch_equals_single(self):
        extractor = self.make_extractor()
        wave = torch.randn(2, extractor.sample_rate // 2, generator=torch.Generator().manual_seed(3)) * 0.1
        batch = extractor(wave)
        torch.testing.assert_close(batch[1], extractor(wave[1]), atol=1e-5, rtol=1e-5)


class VocoderConformance(ComponentConformance):
    """For `Vocoder`s: implement `make_vocoder()`."""

    def make_vocoder(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_vocoder()

    def test_decode_length_follows_hop(self):
        vocoder = self.make_vocoder()
        frames = 40
        features = torch.randn(1, vocoder.feature_dim, frames, generator=torch.Generator().manual_seed(0)) - 4
        wave = vocoder.decode(features)
        assert wave.dim() == 2 and wave.shape[0] == 1 and torch.isfinite(wave).all()
        expected = frames * vocoder.hop_length * vocoder.sample_rate / vocoder.feature_sample_rate
        assert abs(wave.shape[1] - expected) <= 2 * vocoder.hop_length * vocoder.sample_rate / vocoder.feature_sample_rate

    def test_attributes(self):
        vocoder = self.make_vocoder()
        assert vocoder.sample_rate > 0 and vocoder.feature_sample_rate > 0
        assert vocoder.hop_length > 0 and vocoder.feature_dim > 0


class AcousticModelConformance(ComponentConformance):
    """For flow-matching `AcousticModel`s: implement `make_model()`. Models that emit audio
    are model families (`SynthesizerConformance`)."""

    def make_model(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_model()

    def _conditions(self, model) -> Conditions:
        generator = torch.Generator().manual_seed(0)
        ids = sorted(set(model.vocab.values()) - {model.pad_id})[:20] if model.vocab else list(range(1, 21))
        prompt = torch.randn(2, 30, model.feature_dim, generator=generator)
        lens = torch.tensor([30, 22])
        prompt[1, 22:] = 0
        return model.condition([ids[:8], ids[:6]], [ids[5:17], ids[2:9]], prompt, lens, 1.0)

    def test_conditions_are_consistent(self):
        model = self.make_model()
        cond = self._conditions(model)
        assert cond.padding_mask.shape == (2, cond.num_frames)
        assert int(cond.features_lens.max()) == cond.num_frames
        assert torch.equal(cond.padding_mask, torch.arange(cond.num_frames)[None] >= cond.features_lens[:, None])
        assert cond.speech_condition.shape == (2, cond.num_frames, model.feature_dim)

    def test_velocity_shape(self):
        model = self.make_model()
        cond = self._conditions(model)
        x = torch.randn(2, cond.num_frames, model.feature_dim, generator=torch.Generator().manual_seed(1))
        scale = torch.tensor(1.0) if model.uses_guidance_scale_input else None
        v = model.velocity(x, torch.tensor(0.4), cond, scale)
        assert v.shape == x.shape and torch.isfinite(v).all()



class SynthesizerConformance(ComponentConformance):
    """For model families (`Synthesizer`s): implement `make_synthesizer()`; override `voice()`
    (default: the family's default voice, None) and `sample_token_ids()` when needed."""

    def make_synthesizer(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_synthesizer()

    def voice(self, family):
        """What to synthesize with (default: None, the family's default voice)."""
        return None

    def sample_token_ids(self, family) -> list[int]:
        """Ids to synthesize (default: 30 vocabulary ids, pad excluded)."""
        pad = getattr(family, "pad_id", 0)
        ids = sorted(set(family.vocab.values()) - {pad}) if family.vocab else list(range(1, 31))
        return ids[:30]

    def test_declares_what_it_is(self):
        family = self.make_synthesizer()
        assert family.kind == "synthesizer" and family.name
        assert family.sample_rate > 0 and family.num_channels >= 1
        assert isinstance(family.voices(), list)

    def test_waveforms_are_deterministic_per_seed(self):
        """One (C, N) float32 finite waveform per sequence, the same for the same seed, and
        independent of what it is batched with."""
        family = self.make_synthesizer()
        voice = family.resolve_voice(self.voice(family))
        options = family.options({})
        ids = self.sample_token_ids(family)
        (wave,) = family.synthesize([ids], voice, options, [7])
        assert wave.dim() == 2 and wave.shape[0] == family.num_channels and wave.shape[1] > 0
        assert wave.dtype == torch.float32 and torch.isfinite(wave).all()
        assert torch.equal(wave, family.synthesize([ids], voice, options, [7])[0])
        batch = family.plan_batches([len(ids), len(ids[:10])], voice, options)
        assert sorted(i for b in batch for i in b) == [0, 1]

    def test_unknown_option_is_an_error_naming_the_options(self):
        family = self.make_synthesizer()
        with pytest.raises(ConfigError, match="no option 'no_such_option'"):
            family.options({"no_such_option": 1})

    def test_bad_voice_is_a_clear_error(self):
        family = self.make_synthesizer()
        with pytest.raises(ConfigError):
            family.resolve_voice(12345)


class TranscriberConformance(ComponentConformance):
    """For `PromptTranscriber`s: implement `make_transcriber()` and `speech_sample()` -> (Audio, text)."""

    def make_transcriber(self):
        raise NotImplementedError

    def speech_sample(self) -> tuple[Audio, str]:
        raise NotImplementedError

    def make_component(self):
        return self.make_transcriber()

    def test_transcribes_speech(self):
        audio, text = self.speech_sample()
        heard = self.make_transcriber().transcribe(audio)
        words = {w.strip(".,!?").lower() for w in text.split()}
        got = {w.strip(".,!?").lower() for w in heard.split()}
        assert len(words & got) >= 0.7 * len(words), heard


class ChunkerConformance(ComponentConformance):
    """For `TextChunker`s: implement `make_chunker()`."""

    text = "First sentence here. Second one, with a clause; and more words! Last? " * 3

    def make_chunker(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_chunker()

    def test_spans_point_into_the_text_and_respect_the_budget(self):
        chunker = self.make_chunker()
        spans = chunker.split(self.text, 40)
        assert spans and all(isinstance(s, TextSpan) for s in spans)
        for span in spans:
            assert self.text[span.start:span.end].strip() == span.text
            assert len(span.text) <= 40 or " " not in span.text
        assert " ".join(s.text for s in spans).split() == self.text.split()

    def test_deterministic(self):
        chunker = self.make_chunker()
        assert chunker.split(self.text, 30) == chunker.split(self.text, 30)


class NormalizerConformance(ComponentConformance):
    """For `TextNormalizer`s: implement `make_normalizer()`; `cases` maps input -> expected."""

    cases: dict[str, str] = {}

    def make_normalizer(self):
        raise NotImplementedError

    def make_component(self):
        return self.make_normalizer()

    def test_cases(self):
        normalizer = self.make_normalizer()
        for source, expected in self.cases.items():
            assert normalizer.normalize(source) == expected

    def test_plain_words_unchanged(self):
        assert self.make_normalizer().normalize("plain words only") == "plain words only"
