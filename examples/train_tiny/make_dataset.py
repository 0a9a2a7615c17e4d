"""Synthesize a single-speaker English training set with the default Piper voice (offline).

    python examples/train_tiny/make_dataset.py OUTDIR --minutes 60

writes OUTDIR/wavs/utt_00000.wav ... and OUTDIR/data.tsv (`id<TAB>text<TAB>wav`, the input of
`voxpipe data prepare --tsv`). Sentences come from a seeded template grammar (no corpus to
download); each is spoken by `configs/piper.yaml` (en_US-joe-medium, 22.05 kHz; data preparation
resamples to the features' 24 kHz). Existing clips are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

SUBJECTS = ["the old farmer", "my younger sister", "a tired traveler", "the city council", "our new neighbor",
            "the quiet student", "a small child", "the ship captain", "every good teacher", "the young doctor",
            "his best friend", "the night guard", "a clever fox", "the brown dog", "the local baker"]
VERBS = ["found", "painted", "carried", "opened", "borrowed", "repaired", "noticed", "described", "followed",
         "visited", "cleaned", "forgot", "bought", "watched", "moved"]
OBJECTS = ["a wooden box", "the heavy door", "seven green apples", "an empty bottle", "the broken clock",
           "a long letter", "the red bicycle", "two silver keys", "the garden gate", "a warm blanket",
           "the narrow bridge", "a basket of bread", "the family photograph", "an old map", "the kitchen table"]
PLACES = ["near the river", "after the storm", "before sunrise", "in the crowded market", "behind the station",
          "on a cold morning", "during the holiday", "at the end of the road", "under the tall trees",
          "beside the harbor", "in the middle of winter", "on the top floor"]
CLAUSES = ["because it was late", "although nobody asked", "while the rain kept falling", "and then went home",
           "so that everyone could see", "but nobody said a word", "as the bells were ringing"]
QUESTIONS = ["Did you see where {s} went?", "Why would {s} keep {o} {p}?", "Could {s} have {v} {o}?",
             "Who told you that {s} {v} {o}?"]


def sentences(count: int, seed: int = 0) -> list[str]:
    """`count` distinct, varied sentences (statements, longer clauses, questions)."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        s, v, o, p = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES)
        form = rng.random()
        if form < 0.5:
            text = f"{s.capitalize()} {v} {o} {p}."
        elif form < 0.8:
            text = f"{p.capitalize()}, {s} {v} {o} {rng.choice(CLAUSES)}."
        else:
            text = rng.choice(QUESTIONS).format(s=s, v=v, o=o, p=p)
            text = text[0].upper() + text[1:]
        found[text] = None
    return list(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--minutes", type=float, default=60.0, help="stop after this much audio")
    parser.add_argument("--config", default="piper", help="pipeline that speaks the sentences")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from voxpipe.core.pipeline import Pipeline

    pipeline = Pipeline.from_config(args.config)
    wavs = args.output / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    rows, seconds = [], 0.0
    for index, text in enumerate(sentences(100_000, args.seed)):
        if seconds >= args.minutes * 60:
            break
        path = wavs / f"utt_{index:05d}.wav"
        if not path.is_file():
            pipeline.synthesize(text, None, seed=args.seed + index).save(path)
        import soundfile

        seconds += soundfile.info(path).duration
        rows.append(f"utt_{index:05d}\t{text}\twavs/{path.name}")
        if index % 25 == 0:
            print(f"{index + 1} clips, {seconds / 60:.1f} min", file=sys.stderr, flush=True)
    (args.output / "data.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} clips ({seconds / 60:.1f} min) and {args.output / 'data.tsv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
