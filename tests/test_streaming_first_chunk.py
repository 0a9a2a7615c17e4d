"""The opt-in shorter first chunk of a stream (`settings.first_chunk_max_words`, docs/streaming.md).

Planner-level tests need no model run; one session runs the small fixture pipeline (one torch
thread, short text).
"""

from __future__ import annotations

import copy
import random
import types

import pytest
from test_streaming import next_with_timeout

from voxpipe.core.config import build_config
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.streaming import (
    SentenceChunker,
    StreamingSession,
    TextPlanner,
    sentence_pipeline,
)
from voxpipe.streaming.chunking import sentence_spans
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT as PROMPT_TEXT
from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config
from voxpipe.testing.threads import one_torch_thread

PARAGRAPH = (  # benchmarks/streaming_latency.py's paragraph
    "The old lighthouse stood at the edge of the cliff. Every night, its beam swept across the dark water. "
    "Sailors trusted it to guide them safely home. One winter, a storm knocked out the power for three days. "
    "The keeper climbed the stairs with a lantern and kept the light burning."
)
TEXTS = [
    PARAGRAPH,
    "Every night, its beam swept across the dark water. It was cold.",
    '"Hello," she said, quietly and slowly, to the man at the door. He nodded.',
    "[S1] Well, you see, it was very late that night. How are you? [S2] Fine, thanks. And you?",
    "Short one. Then a much longer second sentence follows it here.",
    "One two three four five six seven eight nine ten",
    "  Wait… what?! He left at 10 a.m. on the third day, with Dr. Smith and two friends.",
    "我们今天去公园玩，然后回家吃饭。好的。",
]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    with one_torch_thread():
        yield Pipeline.from_config(tiny_pipeline_config())


@pytest.fixture(scope="module")
def voice(pipeline):
    with one_torch_thread():
        return pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)


def with_first_chunk(pipeline: Pipeline, words: int | None, normalizer=None) -> Pipeline:
    changed = copy.copy(pipeline)
    changed.settings = pipeline.settings.model_copy(update={"first_chunk_max_words": words})
    if normalizer is not None:
        changed.normalizer = normalizer
    return changed


def budget_of(pipeline, voice) -> int:
    return pipeline.synthesizer.chunk_budget(pipeline.load_voice(voice), pipeline.options())


def planned_texts(pipeline, budget, text: str, cuts, rng: random.Random | None = None) -> list[str]:
    """Push `text` cut at `cuts` (calling ready() after each push, or at random with `rng`)."""
    planner = TextPlanner(pipeline, budget, first_chunk_max_words=pipeline.settings.first_chunk_max_words)
    got, previous = [], 0
    for cut in [*sorted(cuts), len(text)]:
        planner.push(text[previous:cut])
        previous = cut
        if rng is None or rng.random() < 0.7:
            got += planner.ready()
    got += planner.finish()
    assert [g.index for g in got] == list(range(len(got)))
    return [g.chunk.span.text for g in got]


def whole_plan(pipeline, budget, text: str) -> list[str]:
    return [c.span.text for c in sentence_pipeline(pipeline).plan_chunks([text], budget)]


# ---- the policy on a whole text ----------------------------------------------------------------
def test_off_by_default_and_then_one_chunk_per_sentence(pipeline, voice):
    assert pipeline.settings.first_chunk_max_words is None
    budget = budget_of(pipeline, voice)
    for text in TEXTS[:5]:
        plan = whole_plan(pipeline, budget, text)
        assert planned_texts(pipeline, budget, text, list(range(1, len(text)))) == plan
        assert len(plan) == len(sentence_spans(text))
        if "[S" not in text:
            assert plan == [text[a:b] for a, b in sentence_spans(text)]


def test_first_sentence_is_cut_at_the_last_clause_mark_within_n_words():
    split = SentenceChunker(None, first_chunk_max_words=4).split
    expected = ["Every night,", "its beam swept across the dark water.", "It was cold."]
    assert [s.text for s in split(TEXTS[1], 100)] == expected
    # longest prefix: "said," (3 words) wins over "Hello," (1 word); closing quotes stay with the mark
    expected = ['"Hello," she said,', "quietly and slowly, to the man at the door."]
    assert [s.text for s in split(TEXTS[2], 100)][:2] == expected
    # CJK clause mark: a word is one ideograph, and "玩，然" (no space) is one word
    assert [s.text for s in SentenceChunker(None, 8).split(TEXTS[7], 100)][:2] == ["我们今天去公园玩，", "然后回家吃饭。"]


def test_first_sentence_is_cut_after_n_words_without_a_clause_mark():
    chunks = [s.text for s in SentenceChunker(None, first_chunk_max_words=4).split(PARAGRAPH, 100)]
    assert chunks[:3] == ["The old lighthouse stood", "at the edge of the cliff.", PARAGRAPH.split(". ")[1] + "."]
    assert len(chunks) == 6  # only the first sentence is cut
    expected = ["One two three", "four five six seven eight nine ten"]
    assert [s.text for s in SentenceChunker(None, 3).split(TEXTS[5], 100)] == expected


def test_a_first_sentence_of_at_most_n_words_is_not_cut():
    split = SentenceChunker(None, first_chunk_max_words=4).split
    assert [s.text for s in split(TEXTS[4], 100)] == ["Short one.", "Then a much longer second sentence follows it here."]
    unchanged = [s.text for s in SentenceChunker(None).split(PARAGRAPH, 100)]
    assert [s.text for s in SentenceChunker(None, 10).split(PARAGRAPH, 100)] == unchanged


def test_the_rest_of_a_cut_dialog_turn_keeps_its_tag():
    spans = SentenceChunker(None, first_chunk_max_words=4).split(TEXTS[3], 100)
    assert [s.text for s in spans][:3] == ["[S1] Well, you see,", "[S1] it was very late that night.", "[S1] How are you?"]
    assert TEXTS[3][spans[1].start:spans[1].end] == "it was very late that night."  # the span is the input's


# ---- streams -----------------------------------------------------------------------------------
@pytest.mark.parametrize("words", [1, 4, 6])
def test_stream_chunks_do_not_depend_on_the_pushes_and_equal_the_whole_text_plan(pipeline, voice, words):
    on = with_first_chunk(pipeline, words)
    budget, rng, cut_texts = budget_of(on, voice), random.Random(words), 0
    for text in TEXTS:
        expected = whole_plan(on, budget, text)
        cut_texts += expected != whole_plan(pipeline, budget, text)
        for cuts in ([], list(range(1, len(text))), *(rng.sample(range(len(text) + 1), rng.randint(1, 12)) for _ in range(8))):
            assert planned_texts(on, budget, text, cuts, rng) == expected, (text, sorted(cuts))
    assert cut_texts >= 5  # the setting is exercised


@pytest.mark.filterwarnings("ignore:.*cannot be encoded")
def test_with_the_english_normalizer_the_stream_equals_the_whole_text_plan(pipeline, voice):
    from voxpipe.plugins.text.english import EnglishNormalizer

    on = with_first_chunk(pipeline, 4, EnglishNormalizer())
    budget, rng = budget_of(on, voice), random.Random(5)
    texts = [
        "Dr. Smith paid $5.50 on Jan. 3rd, 2024 for the 2 old books. It was 3:30 pm!",
        "In 1999 we had 3 cats and 12 dogs at home. Then fewer.",
        "I paid $5 million for the old house. Yes.",  # "five dollars" until "million" arrives
        "We met at 10 a.m. on Monday with 3 friends and more. Yes.",
        PARAGRAPH,
    ]
    for text in texts:
        expected = whole_plan(on, budget, text)
        assert expected != whole_plan(with_first_chunk(on, None), budget, text)  # the first sentence is cut
        typed = [i for i, char in enumerate(text) if char == " "]  # word by word, ready() after each
        assert planned_texts(on, budget, text, typed) == expected, text
        for _ in range(6):
            cuts = rng.sample(range(len(text) + 1), rng.randint(1, 12))
            assert planned_texts(on, budget, text, cuts, rng) == expected, (text, sorted(cuts))


def test_a_normalizer_reading_past_the_margin_keeps_the_stream_push_independent(pipeline):
    """"zebra" (4 words on) changes the first word: the released "I saw" differs from the
    whole-text plan's "WE saw"; the stream still speaks every word once, for any pushes."""

    class ReadsFarAhead:
        def normalize(self, text: str) -> str:
            return text.replace("I ", "WE ") if "zebra" in text else text

    on = with_first_chunk(pipeline, 2, ReadsFarAhead())
    text, rng = "I saw a big striped zebra today. Yes.", random.Random(2)
    assert whole_plan(on, 200, text) == ["WE saw", "a big striped zebra today.", "Yes."]
    plans = {tuple(planned_texts(on, 200, text, rng.sample(range(len(text) + 1), rng.randint(1, 12)), rng)) for _ in range(20)}
    assert plans == {("I saw", "a big striped zebra today.", "Yes.")}


def push_words_until_ready(planner: TextPlanner, text: str):
    """Push `text` word by word (" word" pieces) until ready() plans something: (number of
    words pushed, the chunks)."""
    pieces = text.split(" ")
    for number, word in enumerate(pieces):
        planner.push(word if number == 0 else " " + word)
        chunks = planner.ready()
        if chunks:
            return number + 1, chunks
    raise AssertionError("nothing was planned")


@pytest.mark.filterwarnings("ignore:.*cannot be encoded")
@pytest.mark.parametrize(("normalized", "words_pushed"), [(False, 5), (True, 7)])
def test_typed_text_releases_the_first_chunk_before_the_first_sentence_ends(pipeline, voice, normalized, words_pushed):
    """Without a normalizer the start of word 5 decides "The old lighthouse stood"; with one,
    word 5 must be complete and word 6 must not change it (its end is known when 7 starts)."""
    from voxpipe.plugins.text.english import EnglishNormalizer

    on = with_first_chunk(pipeline, 4, EnglishNormalizer() if normalized else None)
    planner = TextPlanner(on, budget_of(on, voice), first_chunk_max_words=4)
    pushed, chunks = push_words_until_ready(planner, PARAGRAPH)
    assert pushed == words_pushed
    assert [c.chunk.span.text for c in chunks] == ["The old lighthouse stood"]
    assert chunks[0].raw_span == (0, len("The old lighthouse stood"))
    planner.push(PARAGRAPH[len(planner.raw):PARAGRAPH.index("cliff.") + 6])
    if not normalized:  # the normalizer also waits for the next sentence's end
        assert planner.ready() == []  # "cliff.5" could follow
        planner.push(" E")
        (rest,) = planner.ready()
    else:
        planner.push(" Every night, its beam swept across the dark water. S")
        rest, *_ = planner.ready()
    assert rest.chunk.span.text == "at the edge of the cliff." and rest.index == 1
    assert PARAGRAPH[slice(*rest.raw_span)] == "at the edge of the cliff."


def planner_only_pipeline():
    """No normalizer, no chunker, a tokenizer that keeps every character: planning only."""
    family = types.SimpleNamespace(prepare_text=lambda text: text)
    tokenizer = types.SimpleNamespace(encode=lambda text: list(text))
    return types.SimpleNamespace(normalizer=None, synthesizer=family, tokenizer=tokenizer,
                                 chunk_text=lambda text, budget: SentenceChunker(None).split(text.strip(), budget))


def test_a_clause_cut_waits_for_word_n_plus_one():
    """"Every night," could be the whole first sentence (then it is not cut): the cut is known
    when a fifth word starts."""
    planner = TextPlanner(planner_only_pipeline(), 1000, first_chunk_max_words=4)
    for piece in ["Every night,", " its", " beam", " "]:
        planner.push(piece)
        assert planner.ready() == []  # "Every night, its beam." would not be cut
    planner.push("s")
    assert [c.chunk.span.text for c in planner.ready()] == ["Every night,"]


# ---- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -2, "many"])
def test_a_bad_value_is_a_config_error_naming_the_key(value):
    with pytest.raises(ConfigError, match="settings.first_chunk_max_words"):
        build_config(tiny_pipeline_config(settings={"first_chunk_max_words": value}))
    with pytest.raises(ConfigError, match="first_chunk_max_words"):
        SentenceChunker(None, first_chunk_max_words=value)


def test_the_setting_is_read_from_the_pipeline_file():
    config = build_config(tiny_pipeline_config(settings={"first_chunk_max_words": 5}))
    assert config.settings.first_chunk_max_words == 5
    assert build_config(tiny_pipeline_config()).settings.first_chunk_max_words is None


# ---- a session on the fixture model ------------------------------------------------------------
def test_session_speaks_the_short_prefix_first_and_equals_synthesize(pipeline, voice):
    on = with_first_chunk(pipeline, 3)
    text = "The dog ran home to sleep. It was late!"
    with one_torch_thread():
        expected = sentence_pipeline(on).synthesize(text, voice, seed=5).to_pcm16()
        session = StreamingSession(on, voice, seed=5)
        session.push_text("The dog ran ho")  # word 4 has started: "The dog ran" is final
        chunks = iter(session)
        first = next_with_timeout(chunks, 60)
        assert first is not None and first.metadata["text"] == "The dog ran" and first.num_samples > 0
        assert first.metadata["chunk_index"] == 0 and text[slice(*first.text_span)] == "The dog ran"
        session.push_text(text[len("The dog ran ho"):])
        session.flush()
        rest = list(chunks)
    assert [c.metadata["text"] for c in rest] == ["home to sleep.", "It was late!"]
    assert b"".join(c.pcm for c in [first, *rest]) == expected
