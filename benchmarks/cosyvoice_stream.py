"""CosyVoice2 streamed vs whole token-to-wave: time to first audio and real-time factor, on
FULL-SIZE random weights (the official CosyVoice2-0.5B sizes: Qwen2.5-0.5B LM, 6-block
conformer + 12-mid-block estimator flow, 512-channel HiFT), so no download is needed.

    python benchmarks/cosyvoice_stream.py [--model-dir DIR] [--text-tokens 8] [--threads 2] [--precision auto]
        [--json out.json]

Without --model-dir, random weights in the official formats (llm.pt, flow.pt, hift.pt,
cosyvoice2.yaml, CosyVoice-BlankEN/config.json; ~2.6 GB) are written to a temporary folder
first (not timed). With --model-dir pointing at the real CosyVoice2-0.5B, the same numbers are
measured on the real model (the voice is still a random prompt).

Both paths run the same LM tokens (same seed): "whole" generates every token, then runs the flow
and HiFT once; "streamed" runs the official streaming token-to-wave while the LM generates (first
chunk after 25 + prompt padding + 3 lookahead tokens, hops 25/50/100). Time to first audio =
seconds from the call to the first PCM sample; RTF = compute seconds / audio seconds. Random
weights rarely emit the end token, so the LM runs to its cap (20 x text tokens: 8 text tokens ->
160 speech tokens, 6.4 s of audio). Numbers: docs/cosyvoice.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TINY_TOKENIZER = REPO / "tests" / "fixtures" / "cosyvoice" / "lm_tiny" / "model" / "CosyVoice-BlankEN"

QWEN2_5_0_5B = {"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
                "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
                "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                "tie_word_embeddings": True, "hidden_act": "silu", "use_sliding_window": False}

# the model sections of the official cosyvoice2.yaml (examples/libritts/cosyvoice2/conf), sizes as published
FULL_YAML = """\
sample_rate: 24000
llm_input_size: 896
llm_output_size: 896
spk_embed_dim: 192
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2
chunk_size: 25
num_decoding_left_chunks: -1
llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: 6561
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1
flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: 512
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: 6561
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        output_size: 512
        attention_heads: 8
        linear_units: 2048
        num_blocks: 6
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        input_size: 512
        use_cnn_module: False
        macaron_style: False
        static_chunk_size: !ref <chunk_size>
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [256]
            dropout: 0.0
            attention_head_dim: 64
            n_blocks: 4
            num_mid_blocks: 12
            num_heads: 8
            act_fn: 'gelu'
            static_chunk_size: !ref <chunk_size> * <token_mel_ratio>
            num_decoding_left_chunks: !ref <num_decoding_left_chunks>
hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 512
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 512
"""


def write_random_model(folder: Path) -> None:
    """Full-size random weights in the official file formats."""
    from voxpipe.plugins.cosyvoice.flow import CausalFlowModel
    from voxpipe.plugins.cosyvoice.flow_config import read_flow_hyperparams
    from voxpipe.plugins.cosyvoice.hift import HiftGenerator, read_hift_config
    from voxpipe.plugins.cosyvoice.hyperparams import read_hyperparams
    from voxpipe.plugins.cosyvoice.lm import SpeechLM, read_qwen_config

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice2.yaml").write_text(FULL_YAML)
    qwen = folder / "CosyVoice-BlankEN"
    shutil.copytree(TINY_TOKENIZER, qwen, dirs_exist_ok=True)
    (qwen / "config.json").write_text(json.dumps(QWEN2_5_0_5B))
    torch.manual_seed(0)
    lm = SpeechLM(read_hyperparams(folder / "cosyvoice2.yaml").lm, read_qwen_config(qwen / "config.json"))
    torch.save(lm.state_dict(), folder / "llm.pt")
    del lm
    torch.save(CausalFlowModel(read_flow_hyperparams(folder / "cosyvoice2.yaml")).state_dict(), folder / "flow.pt")
    torch.save(HiftGenerator(read_hift_config(folder / "cosyvoice2.yaml")).state_dict(), folder / "hift.pt")


def measure(family, voice, text_ids, seed, stream: bool) -> dict:
    options = family.options({})
    start = time.perf_counter()
    first, samples = None, 0
    if stream:
        for chunk in family.stream_chunks(text_ids, voice, options, seed):
            first = time.perf_counter() - start if first is None else first
            samples += chunk.shape[-1]
    else:
        (wave,) = family.synthesize([text_ids], voice, options, [seed])
        first = time.perf_counter() - start
        samples = wave.shape[-1]
    total = time.perf_counter() - start
    seconds = samples / family.sample_rate
    return {"time_to_first_audio_s": round(first, 3), "compute_s": round(total, 3), "audio_s": round(seconds, 3),
            "rtf": round(total / seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="an official CosyVoice2-0.5B folder (default: random weights)")
    parser.add_argument("--text-tokens", type=int, default=8, help="text ids to speak (x20 speech tokens at most)")
    parser.add_argument("--prompt-tokens", type=int, default=75, help="voice prompt length in 25 Hz tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "fp32"), default=None,
                        help="as the commands' --precision (auto: the flow's Linear layers on oneDNN); default: the "
                             "config as written (the official kernels)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from voxpipe import Pipeline

    scratch = None
    folder = args.model_dir
    if folder is None:
        scratch = tempfile.TemporaryDirectory(prefix="cosyvoice-bench-")
        folder = Path(scratch.name)
        started = time.perf_counter()
        write_random_model(folder)
        print(f"random full-size weights written in {time.perf_counter() - started:.0f} s")
    model = str(folder)
    pipeline = Pipeline.from_config({"synthesizer": {
        "type": "cosyvoice", "model_dir": model, "lm": {"type": "cosyvoice-lm", "model_dir": model},
        "flow": {"type": "cosyvoice-flow", "model_dir": model}, "vocoder": {"type": "cosyvoice-hift", "model_dir": model}}},
        precision=args.precision)
    family = pipeline.synthesizer
    generator = torch.Generator().manual_seed(1)
    voice = family.resolve_voice(family.voice_from_parts(
        [1, 2, 3], torch.randint(0, 6561, (args.prompt_tokens,), generator=generator).tolist(),
        torch.randn(2 * args.prompt_tokens, 80, generator=generator) * 2 - 6, torch.randn(192, generator=generator)))
    text_ids = list(range(100, 100 + args.text_tokens))
    results = {"threads": args.threads, "text_tokens": args.text_tokens, "prompt_tokens": args.prompt_tokens,
               "precision": args.precision,
               "weights": "random full-size" if args.model_dir is None else str(args.model_dir)}
    with torch.inference_mode():
        for name, stream in (("streamed", True), ("whole", False)):
            results[name] = measure(family, voice, text_ids, args.seed, stream)
            print(name, results[name], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
