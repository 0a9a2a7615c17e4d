"""VibeVoice-Realtime streaming speed on official-size random weights (no download).

Reports, per latent frame (3200 samples = 133.3 ms of 24 kHz audio):
  text window   LM (lower layers) + TTS LM on a 5-token text window
  tts step      TTS LM + negative TTS LM on one speech latent
  head          one latent: DPM-Solver++ steps x diffusion head on the CFG-doubled batch
  decode        the sigma-VAE decoder on one frame through its streaming cache
and the first-chunk latency (first text window + first frame, as the loop runs it) and the
real-time factor of the whole loop (compute seconds / audio seconds; < 1 is faster than real time).

    python benchmarks/vibevoice_stream.py --frames 24 --threads 2

Shapes: Qwen2.5-0.5B (hidden 896, 24 layers of which 20 form the TTS LM, 14 heads, 2 KV heads,
intermediate 4864), the official sigma-VAE (vae_dim 64, ratios 8-5-5-4-2-2, decoder depths
8-3-3-3-3-3-3, 32 filters) and diffusion head (4 layers, ffn ratio 3). The vocabulary is cut to
--vocab entries (default 4096): it only sizes the embedding table, not the per-step work.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

ACOUSTIC = {"vae_dim": 64, "encoder_n_filters": 32, "encoder_ratios": [8, 5, 5, 4, 2, 2],
            "encoder_depths": "3-3-3-3-3-3-8", "decoder_n_filters": 32}
HEAD = {"hidden_size": 896, "head_layers": 4, "head_ffn_ratio": 3.0, "latent_size": 64}


def official_size_config(vocab: int) -> dict:
    decoder = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
               "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": vocab,
               "max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0}
    return {"model_type": "vibevoice_streaming", "decoder_config": decoder, "acoustic_tokenizer_config": ACOUSTIC,
            "diffusion_head_config": HEAD, "tts_backbone_num_hidden_layers": 20}


def random_prompt(config, length: int):
    from voxpipe.plugins.vibevoice.voices import PromptCache, VoicePrompt

    facts = config.fingerprint()
    shape = (1, facts["num_key_value_heads"], length, facts["head_dim"])

    def cache(layers: int, size: int) -> PromptCache:
        return PromptCache([torch.randn(shape[:2] + (size,) + shape[3:]) for _ in range(layers)],
                           [torch.randn(shape[:2] + (size,) + shape[3:]) for _ in range(layers)],
                           torch.randn(1, facts["hidden_size"]))

    return VoicePrompt(cache(facts["lm_layers"], length), cache(facts["tts_lm_layers"], length),
                       cache(facts["lm_layers"], 1), cache(facts["tts_lm_layers"], 1))


def timed(function, repeats: int) -> float:
    """Median seconds of `function()`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="latent frames generated for the RTF")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=5, help="DPM-Solver++ steps per latent")
    parser.add_argument("--prompt", type=int, default=120, help="voice prompt length (positions)")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from voxpipe.plugins.vibevoice.acoustic import AcousticTokenizer
    from voxpipe.plugins.vibevoice.codec import AcousticCodec
    from voxpipe.plugins.vibevoice.config import StreamingModelConfig
    from voxpipe.plugins.vibevoice.denoiser import HeadDenoiser, NegativePromptGuidance
    from voxpipe.plugins.vibevoice.generation import GenerationSettings, RealtimeSession
    from voxpipe.plugins.vibevoice.model import RealtimeModel
    from voxpipe.plugins.vibevoice.schedule import DPMSolver

    config = StreamingModelConfig.from_dict(official_size_config(args.vocab), "benchmark config")
    model = RealtimeModel(config).eval()
    with torch.no_grad():
        model.speech_scaling_factor.fill_(0.2)
        model.speech_bias_factor.fill_(0.0)
        model.tts_eos_classifier.fc2.bias.fill_(-1e4)  # never stops: run exactly --frames frames
    codec = AcousticCodec.create()
    codec.attach(AcousticTokenizer(config.acoustic, encoder=False))
    solver = DPMSolver.create(num_steps=args.steps)
    guidance = NegativePromptGuidance.create(scale=1.5)
    denoiser = HeadDenoiser(model.prediction_head, solver.schedule)
    prompt = random_prompt(config, args.prompt)

    def session() -> RealtimeSession:
        settings = GenerationSettings(args.steps, 1.5, 8192)
        return RealtimeSession(model, codec, solver, guidance, denoiser, prompt, settings, torch.Generator().manual_seed(1))

    text = list(range(10, 10 + 5 * (args.frames // 6 + 1)))
    probe = session()
    with torch.inference_mode():
        window = timed(lambda: probe.feed_text(text[:5]), args.repeats)
        head = timed(probe.sample_latent, args.repeats)
        embed = model.acoustic_connector(torch.randn(1, 1, config.acoustic.vae_dim))
        step = timed(lambda: probe._feed_speech(embed), args.repeats)
        stream = codec.stream()
        decode = timed(lambda: stream.decode(torch.randn(1, 1, config.acoustic.vae_dim)), args.repeats)

    run = session()
    start = time.perf_counter()
    frames = run.frames(text)
    next(frames)
    first = time.perf_counter() - start
    count = 1
    for _ in frames:
        count += 1
        if count >= args.frames:
            break
    total = time.perf_counter() - start
    audio_seconds = count * codec.hop_length / codec.sample_rate
    report = {
        "threads": args.threads, "steps": args.steps, "prompt_positions": args.prompt, "frames": count,
        "seconds_per_frame_audio": codec.hop_length / codec.sample_rate,
        "text_window_s": round(window, 4), "tts_step_s": round(step, 4), "head_s": round(head, 4),
        "decode_s": round(decode, 4), "first_chunk_latency_s": round(first, 4),
        "rtf": round(total / audio_seconds, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
