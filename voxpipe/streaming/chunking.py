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

A shorter first chunk (`settings.first_chunk_max_words` = N, off by default): only the first
sentence of the text is cut, when it has more than N words: its first chunk is the longest
prefix of at most N words that ends at a clause cut (the `punctuation` chunker's clause rule:
after , ; : — and their CJK forms), else its first N words; the rest of the sentence is the next
chunk (`first_chunk_end`). In a stream that prefix is final once the text up to the first
character of word N+1 has arrived, before the sentence ends (`TextPlanner._release_first_chunk`).
Without a normalizer that decision reads exactly the text the whole-text plan reads, so the
chunks are the same for any pushes. With one, the prefix is normalized from the input up to a
word break and released when one more input word does not change it; a normalizer whose rules
reach further than one word ("$5 million") can make that prefix differ from the whole-text
plan, and the rest of the sentence is then whatever follows the released words.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import ClassVar

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Chunk, Pipeline
from voxpipe.core.sentences import (
    _CLOSERS,
    CLAUSE,
    SENTENCE,
    SENTENCE_MARKS,
    TURN_TAG,
    WORD,
    _mark_breaks,
    _word_breaks,
    stripped_span,
    units,
)
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


def check_first_chunk_max_words(value: int | None) -> int | None:
    """`settings.first_chunk_max_words`: None (off) or a whole number >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"settings.first_chunk_max_words must be a whole number >= 1 or None, got {value!r}")
    return value


def first_chunk_end(text: str, start: int, end: int, max_words: int) -> int | None:
    """Where the first chunk of the sentence text[start:end] ends (an offset in `text`), or None
    when the sentence has at most `max_words` words (it stays whole).

    The longest prefix of at most `max_words` words that ends at a clause cut (the `clause`
    rule of `voxpipe.core.sentences`), else the end of word `max_words`. A leading dialog turn
    tag is not a word. Reads only the sentence up to the first character of word max_words + 1,
    so a stream can decide it before the sentence ends.
    """
    tag = TURN_TAG.match(text, start)
    body = tag.end() if tag else start
    words = units(text, body, end, WORD)
    if len(words) <= max_words:
        return None
    limit = words[max_words - 1][1]
    clause_ends = [piece_end for _, piece_end in units(text, body, end, CLAUSE)[:-1]]
    fitting = [cut for cut in clause_ends if cut <= limit]
    return fitting[-1] if fitting else limit


def first_sentence_pieces(text: str, start: int, end: int, max_words: int | None) -> list[tuple[int, int]]:
    """The chunks (start, end) of the text's first sentence text[start:end]: the sentence, or
    its first chunk and the rest (see `first_chunk_end`)."""
    cut = None if max_words is None else first_chunk_end(text, start, end, max_words)
    if cut is None:
        return [(start, end)]
    return [span for span in (stripped_span(text, start, cut), stripped_span(text, cut, end)) if span is not None]


_OPEN = -1  # `_first_chunk_decision`: not decided by the text so far


def _first_chunk_decision(text: str, max_words: int) -> tuple[int, int] | None | int:
    """The first chunk (start, end) of the first sentence of `text`, a prefix of the whole
    text, when the prefix already decides it (the sentence has reached word max_words + 1);
    None when the first sentence ended with at most max_words words (no cut); else `_OPEN`."""
    spans = sentence_spans(text)
    if not spans:
        return _OPEN
    start, end = spans[0]
    cut = first_chunk_end(text, start, end, max_words)
    if cut is not None:
        return stripped_span(text, start, cut)
    return None if len(spans) > 1 else _OPEN


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
    """Sentences, each chunked by `inner` (the pipeline's chunker) under the budget;
    first_chunk_max_words: cut the first sentence's first chunk short (module docstring)."""

    name: ClassVar[str] = "sentences"
    description: ClassVar[str] = "one sentence per chunk (long sentences cut by an inner chunker); the streaming policy"
    Params: ClassVar[type[Params]] = Params

    def __init__(self, inner: TextChunker | None = None, first_chunk_max_words: int | None = None) -> None:
        self.inner = inner
        self.first_chunk_max_words = check_first_chunk_max_words(first_chunk_max_words)

    def split(self, text: str, budget: int, measure=len) -> list[TextSpan]:
        spans: list[TextSpan] = []
        tag = ""
        for number, (sentence_start, sentence_end) in enumerate(sentence_spans(text)):
            pieces = [(sentence_start, sentence_end)]
            if number == 0:
                pieces = first_sentence_pieces(text, sentence_start, sentence_end, self.first_chunk_max_words)
            for start, end in pieces:
                prefix, tag = with_turn_tag(text[start:end], tag)
                sentence = prefix + text[start:end]
                if self.inner is None:
                    chunks = [TextSpan(sentence, 0, len(sentence))]
                else:
                    chunks = self.inner.split(sentence, budget, measure)
                spans += [shifted(chunk, start, len(prefix)) for chunk in chunks]
        return spans


def shifted(span: TextSpan, start: int, prefix: int) -> TextSpan:
    """A span of (tag prefix + sentence) as a span of the text the sentence starts at `start` in."""
    return TextSpan(span.text, start + max(span.start - prefix, 0), start + max(span.end - prefix, 0))


def sentence_pipeline(pipeline: Pipeline) -> Pipeline:
    """A shallow copy of `pipeline` whose `synthesize()` gives exactly what a stream gives:
    chunks planned by `SentenceChunker(pipeline.chunker, settings.first_chunk_max_words)` and
    each chunk generated as its own batch (batching several chunks changes their float results).
    Shares every component."""
    reference = copy.copy(pipeline)
    reference.chunker = SentenceChunker(pipeline.chunker, pipeline.settings.first_chunk_max_words)
    reference.synthesizer = copy.copy(pipeline.synthesizer)
    reference.synthesizer.plan_batches = lambda lengths, voice, options: [[i] for i in range(len(lengths))]
    return reference


_NON_SPACE = re.compile(r"\S")
_FIRST_CHUNK_SCAN_WORDS = 24
"""Input words past N a stream reads for the first chunk before it gives up (bounds the work
of a normalizer that keeps changing its mind)."""


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
    first_chunk_max_words: as `SentenceChunker`'s (the session passes
    `settings.first_chunk_max_words`).
    """

    def __init__(self, pipeline: Pipeline, budget: int, first_chunk_max_words: int | None = None) -> None:
        self.pipeline = pipeline
        self.budget = budget
        self.first_chunk_max_words = check_first_chunk_max_words(first_chunk_max_words)
        self._first_pending = True  # the text's first sentence is not planned yet
        self._first_open = self.first_chunk_max_words is not None  # looking for an early first chunk
        self._first_words: list[int] = []  # word breaks of the input (only while looking)
        self._first_scanned = 1  # input before this offset is scanned for word breaks
        # next word break to decide at (without a normalizer, word N's end is the first that can)
        plain = pipeline.normalizer is None and self.first_chunk_max_words is not None
        self._first_next = self.first_chunk_max_words - 1 if plain else 0
        self._released: TextSpan | None = None  # the first chunk, released before its sentence ended
        self._raw_floor = 0  # input offset the released first chunk ends at (later raw spans start after)
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
        early = self._release_first_chunk()
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
            return early
        planned = self._plan(self._norm, spans)
        self._consume(spans[-1][1])
        return early + planned

    def finish(self) -> list[PlannedChunk]:
        """Every remaining chunk (the end of the text is known)."""
        self.finished = True
        early = self._release_first_chunk()  # the same first chunk as if ready() had run at any time
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
        return early + planned

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
        for end, following_end in itertools.pairwise(ends):
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
            pieces = [(start, end)]
            if self._first_pending:
                self._first_pending = False
                pieces = self._first_sentence_pieces(text, start, end)
            for piece_start, piece_end in pieces:
                planned += self._plan_piece(text, piece_start, piece_end, self._norm_base, self._raw_span)
        return planned

    def _plan_piece(self, text: str, start: int, end: int, base: int, raw_span) -> list[PlannedChunk]:
        """The chunks of text[start:end] (one sentence or a piece of the first one); `base`:
        offset of `text` in the whole normalized text; raw_span(span) -> its input span."""
        planned = []
        prefix, self._turn_tag = with_turn_tag(text[start:end], self._turn_tag)
        for span in self.pipeline.chunk_text(prefix + text[start:end], self.budget):
            ids = self.pipeline.tokenizer.encode(span.text)
            if not ids:
                continue
            absolute = shifted(span, base + start, len(prefix))
            raw_start, raw_end = raw_span(absolute)
            raw = (max(raw_start, self._raw_floor), max(raw_end, self._raw_floor))
            planned.append(PlannedChunk(Chunk(0, absolute, ids), self._next_index, raw))
            self._next_index += 1
        return planned

    # ---- the shorter first chunk (first_chunk_max_words) -----------------------------------
    def _first_sentence_pieces(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """The pieces of the first sentence text[start:end] still to plan."""
        if self._released is None:
            return first_sentence_pieces(text, start, end, self.first_chunk_max_words)
        released, cut = self._released, self._released.end - self._norm_base
        if self._norm_base + start == released.start and start < cut <= end and text.startswith(released.text, start):
            rest = stripped_span(text, cut, end)
        else:  # a normalizer rule reached past the margin: skip as many words as were spoken
            tag = TURN_TAG.match(text, start)
            words = units(text, tag.end() if tag else start, end, WORD)
            spoken = min(len(units(released.text, 0, len(released.text), WORD)), len(words))
            rest = stripped_span(text, words[spoken - 1][1], end) if spoken else (start, end)
        return [] if rest is None else [rest]

    def _release_first_chunk(self) -> list[PlannedChunk]:
        """The first sentence's first chunk, once the input decides it (module docstring).

        The input is read at its word breaks, in order, so the decision depends on the text
        only: without a normalizer, at the first break followed by a character that shows the
        first sentence's word N+1 (exactly what the whole-text plan reads); with one, at the
        first break whose normalized input decides a first chunk that the input up to the next
        break (one more word) leaves unchanged. Gives up after N + `_FIRST_CHUNK_SCAN_WORDS`
        words: the sentence is then planned when it ends, as without the setting.
        """
        if not (self._first_open and self._first_pending):
            return []
        max_words, raw, normalizer = self.first_chunk_max_words, self.raw, self.pipeline.normalizer
        if len(raw) > self._first_scanned:  # each input character is scanned for word breaks once
            self._first_words += _word_breaks(raw, self._first_scanned - 1, len(raw))
            self._first_scanned = len(raw)
        words, last, decision = self._first_words, max_words + _FIRST_CHUNK_SCAN_WORDS, _OPEN
        while self._first_next < min(len(words), last):
            cut = words[self._first_next]
            if normalizer is None:
                following = _NON_SPACE.search(raw, cut)  # the first character of the next word
                if following is None:
                    return []  # not arrived yet
                text = raw[:following.start() + 1]
                decision = _first_chunk_decision(text, max_words)
            else:
                if self._first_next + 1 >= len(words):
                    return []  # the margin word has not arrived yet
                text = normalizer.normalize(raw[:cut])
                decision = _first_chunk_decision(text, max_words)
                if isinstance(decision, tuple):
                    longer = normalizer.normalize(raw[:words[self._first_next + 1]])
                    if _first_chunk_decision(longer, max_words) != decision or not longer.startswith(text[:decision[1]]):
                        decision = _OPEN  # one more word changes it: read on
            self._first_next += 1
            if isinstance(decision, tuple):
                return self._release(text, *decision, unchanged=normalizer is None or text == raw[:len(text)], raw_end=cut)
            if decision is None:
                break  # the first sentence ended within N words: it stays whole
        if decision is None or self._first_next >= last:  # no cut, or given up: stop looking
            self._first_open, self._first_words = False, []
        return []

    def _release(self, text: str, start: int, end: int, *, unchanged: bool, raw_end: int) -> list[PlannedChunk]:
        """Plan text[start:end], a prefix of the normalized text, as the first chunk.
        unchanged: `text` is the input itself (exact input spans), else the chunk's input span
        is taken to end at raw_end (the word break it was normalized up to)."""
        lead = len(self.raw) - len(self.raw.lstrip())
        raw_span = (lambda span: (span.start, span.end)) if unchanged else (lambda span: (lead, raw_end))
        self._first_open, self._first_words = False, []
        self._released = TextSpan(text[start:end], start, end)
        planned = self._plan_piece(text, start, end, 0, raw_span)
        self._raw_floor = planned[-1].raw_span[1] if planned else 0
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
