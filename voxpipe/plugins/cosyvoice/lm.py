"""CosyVoice's speech-token LM (`Qwen2LM` of CosyVoice2, `CosyVoice3LM` of CosyVoice3) over
transformers' Qwen2, loading the official `llm.pt` strictly.

Input sequence (one utterance, official order):

    [sos] + embed_tokens(prompt_text ++ text) + [task_id] + speech_embedding(prompt_speech_tokens)

then one speech token (25 Hz) per step from `llm_decoder(hidden)`, fed back through
`speech_embedding`, with the Qwen2 key/value cache. CosyVoice2 takes sos/task_id from
`llm_embedding` (2 rows); CosyVoice3 from `speech_embedding` rows speech_token_size + 0 / + 2.
Generation stops on a stop token (speech_token_size + 0..2 for CosyVoice2, + 0..199 for
CosyVoice3) or after `max_token_text_ratio` x len(text) tokens; before `min_token_text_ratio` x
len(text) tokens the row `speech_token_size` is masked — for both versions, as the official
`sampling_ids` does (for CosyVoice3 that row is sos, its eos is speech_token_size + 1 and stays
drawable: an official quirk kept on purpose, parity fixture `lm_cv3_tiny`).

CosyVoice3 only: (prompt text ++ text) must contain `<|endofprompt|>` (official: an assertion on
the hard-coded id 151646 of the official vocabulary; here a ConfigError, the id is the
`endofprompt_id` parameter so that tokenizers with other vocabularies work).

Sampling is the official `ras_sampling`: nucleus sampling (top-p within the top-k), and when the
drawn token already occurs >= win_size * tau_r times in the last `win_size` tokens, that token is
masked and one is drawn from the whole distribution instead. Every draw uses the `torch.Generator`
given, so the same seed gives the same tokens (the official code draws from torch's global RNG:
seeding both alike gives identical draws, as the parity fixtures check).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.cosyvoice.hyperparams import (
    LMConfig,
    SamplingConfig,
    read_hyperparams,
)
from voxpipe.plugins.cosyvoice.official_weights import (
    HYPERPARAM_FILES,
    load_strictly,
    model_folder,
    pick_file,
    read_state_dict,
)

LM_WEIGHTS_FILE = "llm.pt"
OFFICIAL_ENDOFPROMPT_ID = 151646  # <|endofprompt|> in CosyVoice-BlankEN's vocabulary (the official assertion's)
QWEN_FOLDER = "CosyVoice-BlankEN"


# ---- sampling ------------------------------------------------------------------------------------
def nucleus_sampling(scores: torch.Tensor, top_p: float, top_k: int, generator: torch.Generator | None) -> int:
    """Draw from the smallest prefix of the sorted distribution reaching `top_p`, at most `top_k`
    entries. scores: (V,) log-probabilities. The cumulative sum is accumulated in float32 one
    entry at a time, as the official loop does, so the cut-off is the same to the last bit."""
    sorted_probs, sorted_ids = scores.softmax(dim=0).sort(descending=True, stable=True)
    head = sorted_probs[:top_k].numpy()
    cumulative, taken = np.float32(0.0), 0
    for value in head:
        if not cumulative < top_p:
            break
        cumulative = np.float32(cumulative + value)
        taken += 1
    probs = sorted_probs[:taken].clone()
    return int(sorted_ids[probs.multinomial(1, replacement=True, generator=generator)].item())


def random_sampling(scores: torch.Tensor, generator: torch.Generator | None) -> int:
    """One draw from the whole distribution. scores: (V,) log-probabilities."""
    return int(scores.softmax(dim=0).multinomial(1, replacement=True, generator=generator).item())


def ras_sampling(scores: torch.Tensor, decoded: Sequence[int], sampling: SamplingConfig,
                 generator: torch.Generator | None) -> int:
    """Repetition-aware sampling (VALL-E 2 / CosyVoice2). scores (V,) is modified in place when
    the nucleus draw is rejected (as the official function does)."""
    token = nucleus_sampling(scores, sampling.top_p, sampling.top_k, generator)
    repeats = sum(1 for previous in list(decoded)[-sampling.win_size:] if previous == token)
    if repeats >= sampling.win_size * sampling.tau_r:
        scores[token] = -float("inf")
        token = random_sampling(scores, generator)
    return token


# ---- the module tree (parameter names = the official state dict's) ----------------------------------
class _Qwen2Encoder(nn.Module):
    """Holds `model` (a Qwen2ForCausalLM) as the official `Qwen2Encoder` does."""

    def __init__(self, qwen_config) -> None:
        super().__init__()
        from transformers import Qwen2ForCausalLM

        self.model = Qwen2ForCausalLM(qwen_config)


class SpeechLM(nn.Module):
    """The official LM's parameters: llm_embedding (CosyVoice2 only), llm (Qwen2), llm_decoder,
    speech_embedding."""

    def __init__(self, config: LMConfig, qwen_config) -> None:
        super().__init__()
        self.config = config
        size = config.speech_token_size
        # the row masked before min_len: speech_token_size for both (official `sampling_ids`)
        self.min_len_masked = size
        if config.variant == "Qwen2LM":
            self.llm_embedding = nn.Embedding(2, config.llm_input_size)
            rows, bias = size + 3, True
            self.sos, self.task_id, self.eos = 0, 1, size
            self.stop_tokens = frozenset(size + i for i in range(3))
        else:  # CosyVoice3LM: sos / eos / task_id are speech-embedding rows, 200 reserved rows all stop
            rows, bias = size + 200, False
            self.sos, self.task_id, self.eos = size + 0, size + 2, size + 1
            self.stop_tokens = frozenset(size + i for i in range(200))
        self.llm = _Qwen2Encoder(qwen_config)
        self.llm_decoder = nn.Linear(config.llm_output_size, rows, bias=bias)
        self.speech_embedding = nn.Embedding(rows, config.llm_input_size)
        self._cache_argument = ("cache" if "cache" in inspect.signature(self.llm.model.model.forward).parameters
                                else "past_key_values")

    @property
    def qwen(self):
        """The Qwen2Model (embed_tokens, layers, final norm)."""
        return self.llm.model.model

    def special_embedding(self, row: int) -> torch.Tensor:
        """(1, 1, D) embedding of sos / task_id."""
        table = self.llm_embedding if self.config.variant == "Qwen2LM" else self.speech_embedding
        return table.weight[row].reshape(1, 1, -1)

    def prefix(self, text: torch.Tensor, prompt_speech: torch.Tensor) -> torch.Tensor:
        """(1, L, D) LM input: sos, text embeddings (prompt text first), task_id, prompt speech.
        text: (1, T_text) int64 ids (prompt text ++ text); prompt_speech: (1, T_prompt)."""
        text_emb = self.qwen.embed_tokens(text)
        if prompt_speech.shape[1]:
            speech_emb = self.speech_embedding(prompt_speech)
        else:
            speech_emb = text_emb.new_zeros(1, 0, self.config.llm_input_size)
        return torch.cat([self.special_embedding(self.sos), text_emb, self.special_embedding(self.task_id),
                          speech_emb], dim=1)

    def step(self, inputs: torch.Tensor, cache) -> tuple[torch.Tensor, Any]:
        """(1, L, D) new input embeddings -> ((V,) log-probs of the next token, cache)."""
        out = self.qwen(inputs_embeds=inputs, use_cache=True, **{self._cache_argument: cache})
        hidden = out.last_hidden_state[:, -1]
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        return self.llm_decoder(hidden).log_softmax(dim=-1)[0], cache


@dataclass(frozen=True)
class LengthRule:
    """Generated tokens per text token: at least `min_ratio`, at most `max_ratio` (official 2, 20)."""

    min_ratio: float
    max_ratio: float

    def bounds(self, text_tokens: int) -> tuple[int, int]:
        # float32 tensor arithmetic as the official `int((text_len - prompt_text_len) * ratio)`
        count = torch.tensor([text_tokens], dtype=torch.int32)
        return int(count * self.min_ratio), int(count * self.max_ratio)


# ---- the component -------------------------------------------------------------------------------------
class CosyVoiceLMParams(BaseParams):
    model_dir: str | None = Field(None, description="official model folder (cosyvoice2.yaml, llm.pt, "
                                                    "CosyVoice-BlankEN/config.json); None: the family's model_dir")
    weights: str | None = Field(None, description="llm.pt (default: model_dir/llm.pt)")
    hyperparams: str | None = Field(None, description="cosyvoice2.yaml / cosyvoice3.yaml (default: in model_dir)")
    qwen_config: str | None = Field(None, description="Qwen2 config.json or its folder (default: "
                                                      "model_dir/CosyVoice-BlankEN)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus mass (default: the yaml's ras_sampling)")
    top_k: int | None = Field(None, ge=1, description="nucleus size cap (default: the yaml's)")
    win_size: int | None = Field(None, ge=1, description="repetition window in tokens (default: the yaml's)")
    tau_r: float | None = Field(None, gt=0, description="repetition ratio that forces a random draw")
    min_token_text_ratio: float = Field(2.0, ge=0, description="min speech tokens per text token")
    max_token_text_ratio: float = Field(20.0, gt=0, description="max speech tokens per text token")
    attention: str = Field("sdpa", pattern="^(sdpa|eager)$", description="Qwen2 attention implementation")
    endofprompt_id: int | None = Field(None, ge=0, description="CosyVoice3: id of <|endofprompt|>, which prompt "
                                                                 "text ++ text must contain (None: the family's "
                                                                 "tokenizer's, else 151646, the official vocabulary's)")
    device: str = Field("cpu", description="torch device")


class CosyVoiceLM(Component):
    """CosyVoice2/3 speech-token LM over Qwen2: text ids + prompt speech tokens -> 25 Hz speech tokens."""

    kind: ClassVar[str] = "speech_lm"
    name: ClassVar[str] = "cosyvoice-lm"
    Params: ClassVar[type[BaseParams]] = CosyVoiceLMParams

    def __init__(self, *, model_dir, weights, hyperparams, qwen_config, top_p, top_k, win_size, tau_r,
                 min_token_text_ratio, max_token_text_ratio, attention, endofprompt_id, device) -> None:
        self.overrides = {k: v for k, v in {"top_p": top_p, "top_k": top_k, "win_size": win_size, "tau_r": tau_r}.items()
                          if v is not None}
        self.lengths = LengthRule(min_token_text_ratio, max_token_text_ratio)
        self.paths = {"weights": weights, "hyperparams": hyperparams, "qwen_config": qwen_config}
        self.attention, self.device = attention, torch.device(device)
        self.endofprompt_given = endofprompt_id is not None  # a family's tokenizer may set it when not given
        self.endofprompt_id = OFFICIAL_ENDOFPROMPT_ID if endofprompt_id is None else endofprompt_id
        self.model: SpeechLM | None = None
        if model_dir is not None or weights is not None:
            self.load(model_dir)

    # ---- loading ---------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, model_dir: str | Path | None) -> None:
        """Read the hyper-parameters, the Qwen2 config and llm.pt (strictly). Every file is
        checked to exist before anything is built."""
        folder = model_folder(model_dir)
        yaml_file = self._file("hyperparams", folder, HYPERPARAM_FILES)
        weights_file = self._file("weights", folder, (LM_WEIGHTS_FILE,))
        qwen_file = self._qwen_config_file(folder)
        config = read_hyperparams(yaml_file).require("lm")
        self.config = config
        self.sampling = config.sampling.model_copy(update=self.overrides)
        self.model = build_speech_lm(config, read_qwen_config(qwen_file, self.attention), weights_file)
        self.model.to(self.device).eval()
        self.files = {"hyperparams": yaml_file, "weights": weights_file, "qwen_config": qwen_file}

    def _file(self, key: str, folder: Path | None, names: Sequence[str]) -> Path:
        return pick_file(f"lm.{key}", self.paths[key], folder, tuple(names))

    def _qwen_config_file(self, folder: Path | None) -> Path:
        given = self.paths["qwen_config"]
        if given is not None:
            path = Path(given).expanduser()
            path = path / "config.json" if path.is_dir() else path
            if not path.is_file():
                raise WeightsError(f"CosyVoice LM Qwen2 config not found: {path} (lm.qwen_config)")
            return path
        if folder is None:
            raise ConfigError("CosyVoice LM: set lm.qwen_config or the model folder (model_dir)")
        path = folder / QWEN_FOLDER / "config.json"
        if not path.is_file():
            raise WeightsError(f"CosyVoice LM: {path} not found (the Qwen2 config of the LM; set lm.qwen_config)")
        return path

    def _require(self) -> SpeechLM:
        if self.model is None:
            raise ConfigError("CosyVoice LM has no weights: set lm.model_dir / lm.weights or the family's model_dir")
        return self.model

    # ---- generation ------------------------------------------------------------------------------
    @property
    def speech_token_size(self) -> int:
        return self.config.speech_token_size

    @property
    def variant(self) -> str:
        """'Qwen2LM' (CosyVoice2) or 'CosyVoice3LM'."""
        return self.config.variant

    def check_text(self, text: Sequence[int], prompt_text: Sequence[int] = ()) -> None:
        """CosyVoice3 needs <|endofprompt|> in prompt text ++ text (what the official LM asserts)."""
        if self.variant == "CosyVoice3LM" and self.endofprompt_id not in {int(t) for t in (*prompt_text, *text)}:
            raise ConfigError(f"CosyVoice3 needs <|endofprompt|> (id {self.endofprompt_id}, lm.endofprompt_id) in the "
                              f"prompt text or the text, e.g. a voice transcript 'You are a helpful "
                              f"assistant.<|endofprompt|>What the clip says.'")

    @torch.inference_mode()
    def first_logprobs(self, text: Sequence[int], prompt_text: Sequence[int] = (),
                       prompt_speech_tokens: Sequence[int] = ()) -> torch.Tensor:
        """(V,) log-probabilities of the first speech token (parity checks)."""
        model = self._require()
        logp, _ = model.step(model.prefix(self._ids(prompt_text, text), self._ids(prompt_speech_tokens)), None)
        return logp

    @torch.inference_mode()
    def generate(self, text: Sequence[int], prompt_text: Sequence[int] = (), prompt_speech_tokens: Sequence[int] = (),
                 *, generator: torch.Generator | None = None, sampling: SamplingConfig | None = None,
                 on_logprobs=None) -> Iterator[int]:
        """Speech tokens (ints in [0, speech_token_size)) one by one, as the official
        `Qwen2LM.inference`. text / prompt_text: Qwen2 ids; prompt_speech_tokens: the voice's
        25 Hz tokens. on_logprobs(step, (V,) log-probs as the sampler sees them, eos masked
        before min_len): optional hook (parity tests)."""
        model = self._require()
        sampling = sampling or self.sampling
        if not text:
            raise ConfigError("CosyVoice LM: no text tokens to speak")
        self.check_text(text, prompt_text)
        bad = [t for t in prompt_speech_tokens if not 0 <= int(t) < self.speech_token_size]
        if bad:
            raise ConfigError(f"prompt speech tokens must be in [0, {self.speech_token_size}); got {bad[:5]}")
        min_len, max_len = self.lengths.bounds(len(text))
        inputs = model.prefix(self._ids(prompt_text, text), self._ids(prompt_speech_tokens))
        cache, decoded = None, []
        for step in range(max_len):
            logp, cache = model.step(inputs, cache)
            if step < min_len:
                logp[model.min_len_masked] = -float("inf")
            if on_logprobs is not None:
                on_logprobs(step, logp.clone())
            token = ras_sampling(logp, decoded, sampling, generator)
            if token in model.stop_tokens:
                return
            yield token
            decoded.append(token)
            inputs = model.speech_embedding.weight[token].reshape(1, 1, -1)

    def _ids(self, *parts: Sequence[int]) -> torch.Tensor:
        ids = [int(i) for part in parts for i in part]
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def describe(self) -> dict:
        if self.model is None:
            return {"loaded": False}
        return {"speech_token_size": self.speech_token_size, "variant": self.config.variant,
                "text_vocab_size": int(self.model.qwen.embed_tokens.num_embeddings)}


def read_qwen_config(file: Path, attention: str = "sdpa"):
    """transformers' Qwen2Config from the model's config.json (data only; float32 on CPU)."""
    from transformers import Qwen2Config

    try:
        values = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WeightsError(f"{file}: not a readable Qwen2 config.json: {error}") from None
    if not isinstance(values, dict) or values.get("model_type", "qwen2") != "qwen2":
        raise WeightsError(f"{file}: expected a Qwen2 config (model_type 'qwen2'), got "
                           f"{values.get('model_type') if isinstance(values, dict) else type(values).__name__}")
    values = {k: v for k, v in values.items() if k not in ("torch_dtype", "dtype", "architectures")}
    config = Qwen2Config(**values)
    config._attn_implementation = attention
    return config


def build_speech_lm(config: LMConfig, qwen_config, weights_file: Path) -> SpeechLM:
    """A SpeechLM with `weights_file` (the official llm.pt) loaded strictly."""
    state = read_state_dict(weights_file)
    if qwen_config.hidden_size != config.llm_input_size:
        raise WeightsError(f"Qwen2 hidden_size {qwen_config.hidden_size} != llm_input_size {config.llm_input_size} "
                           f"of the hyper-parameters")
    with torch.device("meta"):
        model = SpeechLM(config, qwen_config)
    load_strictly(model, state, weights_file, fits=f"the {config.variant} of the hyper-parameters", assign=True)
    _rebuild_buffers(model, qwen_config)
    return model.float()


def _rebuild_buffers(model: SpeechLM, qwen_config) -> None:
    """Non-persistent buffers (rotary frequencies) were created on the meta device: remake them."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    model.qwen.rotary_emb = Qwen2RotaryEmbedding(config=qwen_config)
    leftover = [name for name, tensor in list(model.named_parameters()) + list(model.named_buffers())
                if tensor.is_meta]
    if leftover:
        raise WeightsError(f"parameters not set by the checkpoint: {', '.join(leftover[:5])}")
