"""`voxpipe codec encode|decode`: a codec component (default `vibevoice-acoustic`) as a
round-trip tool between sound files and latent files.

    voxpipe codec encode --model DIR speech.wav -o speech.latents.safetensors
    voxpipe codec decode --model DIR speech.latents.safetensors -o speech.wav

A latent file is safetensors with one tensor `latents` (T, D) and metadata naming the codec,
its sample rate and hop length (checked when decoding).
"""

from __future__ import annotations

from pathlib import Path

LATENTS_KEY = "latents"


def register(subparsers) -> None:
    codec = subparsers.add_parser("codec", help="encode audio to codec latents, or decode latents to audio")
    actions = codec.add_subparsers(dest="codec_action", metavar="ACTION")
    actions.required = True
    for action, help_text in (("encode", "sound file -> latents (.safetensors)"),
                              ("decode", "latents (.safetensors) -> sound file")):
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("input", help="sound file" if action == "encode" else "latent file from `codec encode`")
        parser.add_argument("-o", "--output", required=True,
                            help="latent file (.safetensors)" if action == "encode" else "sound file (.wav, .flac)")
        parser.add_argument("--type", default="vibevoice-acoustic", help="registered codec (default: vibevoice-acoustic)")
        parser.add_argument("--model", required=True, help="the codec's weights (model or tokenizer folder)")
        parser.set_defaults(handler=run_encode if action == "encode" else run_decode)


def _codec(args):
    from voxpipe.registry import get_registry

    return get_registry().get("codec", args.type).cls.create(model=args.model)


def run_encode(args) -> int:
    from safetensors.torch import save_file

    from voxpipe.audio.io import load_audio
    from voxpipe.commands.common import UsageError, check_output

    if Path(args.output).suffix != ".safetensors":
        raise UsageError(f"-o/--output {args.output}: latents are written as .safetensors")
    check_output(args.output, [args.input], audio=False)
    if not Path(args.input).is_file():
        raise UsageError(f"input {args.input} is not a file")
    codec = _codec(args)
    audio = load_audio(args.input, codec.sample_rate, min_seconds=0.0)
    latents = codec.encode(audio.samples)[0].contiguous()
    metadata = {"codec": args.type, "sample_rate": str(codec.sample_rate), "hop_length": str(codec.hop_length),
                "samples": str(audio.samples.shape[-1])}
    save_file({LATENTS_KEY: latents.cpu()}, args.output, metadata=metadata)
    print(f"{args.output}: {latents.shape[0]} frames x {latents.shape[1]} dims "
          f"({codec.sample_rate / codec.hop_length:g} frames/s)")
    return 0


def run_decode(args) -> int:
    from safetensors import SafetensorError, safe_open

    from voxpipe.commands.common import UsageError, check_output
    from voxpipe.core.audio import Audio

    check_output(args.output, [args.input])
    try:
        with safe_open(args.input, framework="pt") as handle:
            metadata = handle.metadata() or {}
            names = set(handle.keys())
            if LATENTS_KEY not in names:
                raise UsageError(f"{args.input} holds no {LATENTS_KEY!r} tensor (not made by `voxpipe codec encode`)")
            latents = handle.get_tensor(LATENTS_KEY)
    except (SafetensorError, OSError) as error:
        raise UsageError(f"{args.input} is not a readable latent file: {error}") from None
    codec = _codec(args)
    made_with = (metadata.get("codec"), metadata.get("hop_length"))
    if made_with != (args.type, str(codec.hop_length)):
        raise UsageError(f"{args.input} was made by codec {made_with[0]!r} with hop {made_with[1]}; this is "
                         f"{args.type!r} with hop {codec.hop_length}")
    if latents.dim() != 2:
        raise UsageError(f"{args.input}: latents should be (frames, dims), got {tuple(latents.shape)}")
    audio = codec.decode(latents.unsqueeze(0))[0]
    samples = int(metadata.get("samples", audio.shape[-1]))
    Audio(audio[0, :samples] if audio.shape[0] == 1 else audio[:, :samples], codec.sample_rate).save(args.output)
    print(f"{args.output}: {samples / codec.sample_rate:.2f} s at {codec.sample_rate} Hz")
    return 0
