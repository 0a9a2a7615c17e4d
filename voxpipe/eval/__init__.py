"""`voxpipe eval`: intelligibility, speaker similarity, quality and speed of TTS pipelines.

- `interfaces`: the component kinds `recognizer`, `speaker_encoder`, `quality`.
- `text`: Whisper's English normalization and WER/CER edit counts.
- `testset`: test sets (built-in `english`, `arctic`; TSV or JSONL files).
- `runner`: synthesize (or read existing audio) and measure every item.
- `report`: the JSON document (stable keys) and the Markdown table; `plots`: PNG figures.
- `compare`: paired bootstrap confidence intervals of the difference between two runs.

Implementations of the kinds live in the `evaluation` plugin (`voxpipe/plugins/evaluation/`,
`pip install 'voxpipe[eval]'`). See docs/eval.md.
"""

EXTRA_HINT = "pip install 'voxpipe[eval]'"
"""What to install for the built-in evaluation components."""
