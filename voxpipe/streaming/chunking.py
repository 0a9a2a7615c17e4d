"""The streaming chunking policy: one sentence at a time, planned while the text still arrives.

Policy (the same for a whole text and for a stream, so both give the same chunks):

1. the text is normalized and cut into sentences with the `punctuation` chunker's sentence rule
   (after . ! ? … 。！？, ASCII marks only before a space, not after "Mr." and the like);
2. each sentence is chunked by the pipeline's own chunker under the pipeline's token budget
   (`Pipeline.token_budget`), so a sentence over the budget is cut at clauses, then words; a
   sentence that fits is one chunk. Sentences are never packed together: that is what lets the
   first sentence be spoken before the second is known.

`SentenceChunker` is the policy as a `TextChunker` (for `synthesize()` on a whole text, see
`sentence_pipeline`); `TextPlanner` applies it incrementally to text pushed piece by piece.

When is a sentence final? Its end (a break of the sentence rule) is decided by the characters up
to and including the one after the mark, so a sentence is released once the next character has
arrived (normally the space after "."). The last sentence before the end of the text is held
when it does not end in one of `FINAL_PUNCTUATION` and the pipeline adds final punctuation (the
whole text would get a "." there). Everything else waits for `finish()`.

Normalization runs on the input up to a final sentence end, cut only where it is local: at a
sentence end `b` followed by the sentence ending at `n`, when normalize(raw[cut:n]) ==
normalize(raw[cut:b]) + normalize(raw[b:n]) ("Jan. 3rd, 2024" stays whole). Every decision
depends on the text only, so the chunks never depend on how the text was split into pushes;
they equal the whole-text plan for normalizers whose rules reach at most one sentence across
a cut (docs/streaming.md).

Dialog turns: a sentence that does not start with [S1]/[S2] gets the tag of the turn it
continues (`with_turn_tag`), as the `punctuation` chunker tags the pieces of a cut turn.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from voxpipe.core.component import Params
from voxpipe.core.pipeline import Chunk, Pipeline
from voxpipe.core.sentences import _CLOSERS, SENTENCE, SENTENCE_MARKS, TURN_TAG, _mark_breaks, units
from voxpipe.core.text import TextChunker, TextSpan

# A character no sentence rule treats as punctuation or a closing quote: appended to probe
# whether the text so far ends at a sentence end that no later text can undo.
_PROBE = "x"


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each whitespace-stripped sentence of text[start:end]."""
    return units(text, start, len(text) if end is None else end, SENTENCE)


def with_turn_tag(sentence: str, tag: str) -> tuple[str, str]:
    """Dialog text ("[S1] Hi. How are you? [S2] Fine."): a sentence that does not start with a
    turn tag is spoken by the turn it continues, so it gets that turn's tag, as the
    `punctuation` chunker tags the pieces of a cut turn. Returns (prefix for this sentence,
    tag of the turn open after it)."""
    prefix = "" if TURN_TAG.match(sentence) else tag
    tags = list(TURN_TAG.finditer(sentence))
    if tags:
        tag = tags[-1].group() + " "
    return prefix, tag


def final_sentence_spans(text: str, following: str = "") -> list[tuple[int, int]]:
    """Sentences of `text` whose end no continuation can move.

    following: the text known to come next (only its first character matters). A sentence is
    final when a break ends it and a character after the break is known.
    """
    probe = text + following[:1] + _PROBE
    spans = sentence_spans(probe)
    # the last span holds the probe (alone, or glued to an unfinished sentence): never final
    return [span for span in spans[:-1] if span[1] <= len(text)]


class SentenceChunker(TextChunker):
    """Sentences, each chunked by `inner` (the pipeline's chunker) under the budget."""

    name: ClassVar[str] = "sentences"
    description: ClassVar[str] = "one sentence per chunk (long sentences cut by an inner chunker); the streaming policy"
    Params: ClassVar[type[Params]] = Params

    def __init__(self, inner: TextChunker | None = None) -> None:
        self.inner = inner

    def split(self, text: str, budget: int, measure=len) -> list[TextSpan]:
        spans: list[TextSpan] = []
        tag = ""
        for start, end in sentence_spans(text):
            prefix, tag = with_turn_tag(text[start:end], tag)
            sentence = prefix + text[start:end]
            pieces = [TextSpan(sentence, 0, len(sentence))] if self.inner is None else self.inner.split(sentence, budget, measure)
            spans += [shifted(piece, start, len(prefix)) for piece in pieces]
        return spans


def shifted(span: TextSpan, start: int, prefix: int) -> TextSpan:
    """A span of (tag prefix + sentence) as a span of the text the sentence starts at `start` in."""
    return TextSpan(span.text, start + max(span.start - prefix, 0), start + max(span.end - prefix, 0))


def sentence_pipeline(pipeline: Pipeline) -> Pipeline:
    """A shallow copy of `pipeline` whose `synthesize()` gives exactly what a stream gives:
    chunks planned by `SentenceChunker(pipeline.chunker)` and each chunk generated as its own
    batch (batching several chunks changes their float results). Shares every component."""
    reference = copy.copy(pipeline)
    reference.chunker = SentenceChunker(pipeline.chunker)
    reference.synthesizer = copy.copy(pipeline.synthesizer)
    reference.synthesizer.plan_batches = lambda lengths, voice, options: [[i] for i in range(len(lengths))]
    return reference


@dataclass
class _Segment:
    """A piece of raw input and its normalized text, for mapping spans back to the input."""

    raw_start: int
    raw_end: int
    norm_start: int
    norm_end: int
    unchanged: bool


@dataclass
class PlannedChunk:
    """A chunk ready for synthesis: `chunk.span` is in normalized text; `raw_span` is the
    (start, end) of the input text (all pushes concatenated) it speaks."""

    chunk: Chunk
    index: int
    raw_span: tuple[int, int]


class TextPlanner:
    """Incremental `SentenceChunker` planning of pushed text (see the module docstring).

    `push(text)` adds input; `ready()` returns the chunks now final; `finish()` the rest.
    Chunk `index`es count from 0 over the whole stream, as `plan_chunks` counts them (chunks
    without tokens are dropped and not counted), so they give the same `chunk_seed`s.
    """

    def __init__(self, pipeline: Pipeline, budget: int) -> None:
        self.pipeline = pipeline
        self.budget = budget
        self.raw = ""
        self._raw_cut = 0          # raw text before this is normalized into `_norm`
        self._norm = ""            # normalized text not yet planned
        self._norm_base = 0        # offset of `_norm` in the whole normalized text
        self._segments: list[_Segment] = []
        self._next_index = 0
        self._turn_tag = ""        # dialog turn open at the end of the planned text
        self._scan = (0, 0)        # (cut, offset): raw[cut:offset] is scanned for sentence ends
        self._breaks: list[int] = []  # the sentence ends found there (see _final_sentence_ends)
        self._failed_pair = (-1, -1)  # (cut, end): cuts at ends <= end were found non-local
        self.finished = False

    # ---- input ---------------------------------------------------------------------------
    def push(self, text: str) -> None:
        if self.finished:
            raise RuntimeError("the text is finished; no more text can be pushed")
        self.raw += text

    def ready(self) -> list[PlannedChunk]:
        """Chunks whose text is final now."""
        self._normalize_final_sentences()
        following = self.raw[self._raw_cut:]
        spans = final_sentence_spans(self._norm, following)
        if spans and not following.strip():
            # nothing is known after the last sentence: if the text ended here, the family's
            # text rule could change its end (ZipVoice adds "." to a text without final
            # punctuation), so it waits for the next character or the end
            last = self._norm[spans[-1][0]:spans[-1][1]]
            if self.pipeline.synthesizer.prepare_text(last) != last:
                spans = spans[:-1]
        if not spans:
            return []
        planned = self._plan(self._norm, spans)
        self._consume(spans[-1][1])
        return planned

    def finish(self) -> list[PlannedChunk]:
        """Every remaining chunk (the end of the text is known)."""
        self.finished = True
        self._normalize_final_sentences()  # the same cuts as if ready() had run at any time
        self._normalize_rest()
        text = self._norm
        lead = len(text) - len(text.lstrip())
        if text.strip():
            prepared = self.pipeline.synthesizer.prepare_text(text.strip())
            if prepared != text.strip():
                text = text[:lead] + prepared
        planned = self._plan(text, sentence_spans(text))
        self._consume(len(self._norm))
        return planned

    @property
    def chunk_count(self) -> int:
        return self._next_index

    # ---- internals -----------------------------------------------------------------------
    def _normalize_final_sentences(self) -> None:
        """Normalize the input up to the last sentence end where normalizing is local.

        A cut at a final sentence end `b` (followed by the final sentence ending at `next`) is
        taken when normalize(raw[cut:next]) == normalize(raw[cut:b]) + normalize(raw[b:next]):
        a rule that reads across `b` ("Jan. 3rd" -> "January third") keeps both sides together.
        Every decision depends on the text only, never on when it arrived.
        """
        normalizer = self.pipeline.normalizer
        ends = self._final_sentence_ends()
        if normalizer is None:
            if ends:
                self._append(ends[-1], self.raw[self._raw_cut:ends[-1]])
            return
        for end, following_end in zip(ends, ends[1:]):
            if self._failed_pair[0] == self._raw_cut and end <= self._failed_pair[1]:
                continue  # decided on final text already: not a local cut
            head = normalizer.normalize(self.raw[self._raw_cut:end])
            if normalizer.normalize(self.raw[self._raw_cut:following_end]) == head + normalizer.normalize(self.raw[end:following_end]):
                self._append(end, head)
            else:
                self._failed_pair = (self._raw_cut, end)

    def _final_sentence_ends(self) -> list[int]:
        """Input offsets where the final sentences after the cut end: the ends of
        `final_sentence_spans(raw[cut:])`, found by scanning each pushed character once.

        (Rescanning all unplanned text at every push made run-on text quadratic: 16 k
        characters pushed one at a time took 20 s.) A sentence end is decided by the character
        after it, so ends found before the text's last run of marks and closing quotes are
        kept; that last run is probed on each call, as `final_sentence_spans` probes it.
        """
        raw, cut, size = self.raw, self._raw_cut, len(self.raw)
        if self._scan[0] != cut:  # the cut moved to a sentence end: the scan restarts there
            self._scan, self._breaks = (cut, cut), []
        scanned = self._scan[1]
        tail = size
        while tail > scanned and (raw[tail - 1] in SENTENCE_MARKS or raw[tail - 1] in _CLOSERS):
            tail -= 1
        if tail > scanned:  # raw[tail - 1] ends no run: every break before it is decided
            self._breaks += _mark_breaks(raw, cut, tail, SENTENCE_MARKS, scan_from=scanned)
            self._scan = (cut, tail)
        if tail == size:
            return list(self._breaks)
        return self._breaks + _mark_breaks(raw + _PROBE, cut, size + 1, SENTENCE_MARKS, scan_from=tail)

    def _normalize_rest(self) -> None:
        rest = self.raw[self._raw_cut:]
        if rest:
            normalizer = self.pipeline.normalizer
            self._append(len(self.raw), normalizer.normalize(rest) if normalizer is not None else rest)

    def _append(self, raw_end: int, normalized: str) -> None:
        """Add the normalized text of raw[_raw_cut:raw_end]."""
        piece = self.raw[self._raw_cut:raw_end]
        start = self._norm_base + len(self._norm)
        self._segments.append(_Segment(self._raw_cut, raw_end, start, start + len(normalized), normalized == piece))
        self._norm += normalized
        self._raw_cut = raw_end

    def _plan(self, text: str, spans: list[tuple[int, int]]) -> list[PlannedChunk]:
        planned = []
        for start, end in spans:
            prefix, self._turn_tag = with_turn_tag(text[start:end], self._turn_tag)
            for span in self.pipeline.chunk_text(prefix + text[start:end], self.budget):
                ids = self.pipeline.tokenizer.encode(span.text)
                if not ids:
                    continue
                absolute = shifted(span, self._norm_base + start, len(prefix))
                planned.append(PlannedChunk(Chunk(0, absolute, ids), self._next_index, self._raw_span(absolute)))
                self._next_index += 1
        return planned

    def _consume(self, norm_end: int) -> None:
        """Drop planned normalized text (and segments no later span can fall in)."""
        self._norm = self._norm[norm_end:]
        self._norm_base += norm_end
        while len(self._segments) > 1 and self._segments[0].norm_end <= self._norm_base:
            self._segments.pop(0)

    def _raw_span(self, span: TextSpan) -> tuple[int, int]:
        return self._raw_position(span.start, start=True), self._raw_position(span.end, start=False)

    def _raw_position(self, position: int, *, start: bool) -> int:
        """A normalized-text offset as an input offset: exact in text the normalizer left
        unchanged, else the start (end) of the raw sentence it falls in."""
        for segment in self._segments:
            inside = segment.norm_start <= position < segment.norm_end if start else segment.norm_start < position <= segment.norm_end
            if inside:
                if segment.unchanged:
                    return segment.raw_start + position - segment.norm_start
                raw = self.raw[segment.raw_start:segment.raw_end]
                if start:
                    return segment.raw_start + len(raw) - len(raw.lstrip())
                return segment.raw_end - (len(raw) - len(raw.rstrip()))
        return len(self.raw) if not start or not self._segments else self._segments[-1].raw_end
