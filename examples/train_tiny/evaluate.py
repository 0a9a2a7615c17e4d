"""Intelligibility of a trained model: synthesize held-out sentences, transcribe them with
Whisper tiny.en (faster-whisper, offline), report the word error rate.

    python examples/train_tiny/evaluate.py RUN_DIR/pipeline.yaml --prompt P.wav --prompt-text "..." -n 5

The sentences come from the same template grammar as the training data but past the ones used
for training (`--skip`, default 100000 candidates are drawn and the last n taken), so none is a
training sentence. Needs the `whisper` and `eval` extras (faster-whisper, jiwer, Whisper's English
normalizer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", help="the pipeline.yaml `voxpipe train` exported")
    parser.add_argument("--prompt", required=True, help="prompt audio (a training clip of the same speaker)")
    parser.add_argument("--prompt-text", required=True)
    parser.add_argument("-n", type=int, default=5, help="sentences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the wavs and a JSON report here")
    args = parser.parse_args(argv)

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxpipe.core.config import validate_component
    from voxpipe.core.pipeline import Pipeline
    from voxpipe.registry import get_registry

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_dataset import sentences

    texts = sentences(100_000, 0)[-args.n:]
    pipeline = Pipeline.from_config(args.pipeline)
    voice = pipeline.encode_prompt(args.prompt, args.prompt_text)
    whisper = validate_component("transcriber", {"type": "faster-whisper"}, "transcriber", "evaluate.py",
                                 get_registry(), None).build("transcriber")
    normalize = EnglishTextNormalizer()
    items = []
    for index, text in enumerate(texts):
        audio = pipeline.synthesize(text, voice, seed=args.seed + index)
        heard = whisper.transcribe(audio)
        items.append({"text": text, "heard": heard, "seconds": audio.duration})
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            audio.save(args.out / f"eval_{index}.wav")
        print(f"{text!r} -> {heard!r}")
    wer = jiwer.wer([normalize(i["text"]) for i in items], [normalize(i["heard"]) or "-" for i in items])
    print(f"WER (Whisper tiny.en, {len(items)} sentences): {wer:.1%}")
    if args.out:
        (args.out / "wer.json").write_text(json.dumps({"wer": wer, "items": items}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
