"""Text normalizers (english, chinese, auto, none) and chunkers (punctuation, zipvoice)."""

from __future__ import annotations

import re

import pytest

from voxpipe.core.errors import ConfigError, TextError
from voxpipe.core.text import TextSpan
from voxpipe.plugins.text.chinese import ChineseNormalizer
from voxpipe.plugins.text.chunking import PunctuationChunker, split_text
from voxpipe.plugins.text.english import EnglishNormalizer
from voxpipe.plugins.text.normalizers import AutoNormalizer, NoNormalizer
from voxpipe.plugins.text.scripts import script_runs
from voxpipe.plugins.text.zipvoice_chunking import (
    ZipVoiceChunker,
    add_punctuation,
    chunk_tokens_dialog,
    chunk_tokens_punctuation,
    max_tokens_for_prompt,
)
from voxpipe.testing.conformance import ChunkerConformance, NormalizerConformance


def test_registered_under_their_names(fresh_registry):
    expected = {
        ("normalizer", "english"): EnglishNormalizer, ("normalizer", "chinese"): ChineseNormalizer,
        ("normalizer", "auto"): AutoNormalizer, ("normalizer", "none"): NoNormalizer,
        ("chunker", "punctuation"): PunctuationChunker, ("chunker", "zipvoice"): ZipVoiceChunker,
    }
    for (kind, name), cls in expected.items():
        assert fresh_registry.get(kind, name).cls is cls


# -- normalizers ------------------------------------------------------------------------------
class TestEnglishNormalizer(NormalizerConformance):
    cases = {
        "The 3 quick foxes and 12 dogs.": "The three quick foxes and twelve dogs.",
        "Pi is 3.14, it is -7 outside.": "Pi is three point one four, it is minus seven outside.",
        "1,234,567 people": "one million two hundred and thirty-four thousand five hundred and sixty-seven people",
        "He came 1st, she 22nd.": "He came first, she twenty-second.",
        "In 1999, 2005, 2024 and the 1990s.":
            "In nineteen ninety-nine, two thousand five, twenty twenty-four and the nineteen nineties.",
        "It costs $5.50.": "It costs five dollars and fifty cents.",
        "£1 and €20 and $0.99 and $1": "one pound and twenty euros and ninety-nine cents and one dollar",
        "A $2.5 million deal.": "A two point five million dollars deal.",
        "Up 12.5% and 50 %.": "Up twelve point five percent and fifty percent.",
        "Mr. Smith paid on Jan. 3rd, 2024?": "Mister Smith paid on January third, twenty twenty-four?",
        "On 5 March 2024 and 2024-03-05.": "On the fifth of March twenty twenty-four and March fifth, twenty twenty-four.",
        "Due 12/25/2024.": "Due December twenty-fifth, twenty twenty-four.",
        "At 3:30 pm, 10:05 or 7:00.": "At three thirty p m, ten oh five or seven o'clock.",
        "Leave at 5pm.": "Leave at five p m.",
        "Dr. Who and St. Louis on Baker St. Then": "Doctor Who and Saint Louis on Baker Street. Then",
        "Apples, pears, etc. Then e.g. this.": "Apples, pears, et cetera. Then for example this.",
        "Add 3/4 cup and 1/2 of 5/8.": "Add three quarters cup and one half of five eighths.",
        "Agent 007": "Agent zero zero seven",
    }

    def make_normalizer(self):
        return EnglishNormalizer()


class TestChineseNormalizer(NormalizerConformance):
    cases = {
        "今天是3月5日。": "今天是三月五日。",
        "2024年3月5日": "二零二四年三月五日",
        "超过90%的人，９０％": "超过百分之九十的人，百分之九十",
        "他花了3.5元买了2个苹果": "他花了三点五元买了两个苹果",
        "第2名": "第二名",
        "下午3:05开会，8:30出发，9:00到": "下午三点零五分开会，八点三十分出发，九点整到",
        "电话13800138000": "电话一三八零零一三八零零零",
        "气温-5℃": "气温负五摄氏度",
        "价格$5.50，￥100元": "价格五点五美元，一百元",
        "1/2的人": "二分之一的人",
    }

    def make_normalizer(self):
        return ChineseNormalizer()


class TestAutoNormalizer(NormalizerConformance):
    cases = {
        "我有3个apple，价格是5.5元。": "我有三个apple，价格是五点五元。",
        "I paid $5 for 2杯咖啡 at 3:30 pm.": "I paid five dollars for 两杯咖啡 at three thirty p m.",
        "3.5": "three point five",
        "": "",
    }

    def make_normalizer(self):
        return AutoNormalizer()


class TestNoNormalizer(NormalizerConformance):
    cases = {"Mr. Smith paid $5.": "Mr. Smith paid $5.", "3月5日": "3月5日"}

    def make_normalizer(self):
        return NoNormalizer()


def test_auto_fallback_for_text_without_letters():
    assert AutoNormalizer(fallback="chinese").normalize("3.5") == "三点五"


def test_script_runs_cover_the_text():
    text = "我今天用iPhone 15打电话给Tom，他说OK!"
    runs = script_runs(text)
    assert "".join(run for run, _ in runs) == text
    assert runs == [
        ("我今天用", "zh"), ("iPhone ", "latin"), ("15打电话给", "zh"), ("Tom", "latin"), ("，他说", "zh"), ("OK!", "latin"),
    ]


# -- punctuation chunker ----------------------------------------------------------------------
class TestPunctuationChunkerConformance(ChunkerConformance):
    def make_chunker(self):
        return PunctuationChunker()


class TestZipVoiceChunkerConformance(ChunkerConformance):
    def make_chunker(self):
        return ZipVoiceChunker()


LONG = (
    "Hello there, Mr. Smith. It is 3.14 degrees today! Is it? Yes, it is — really; "
    "we checked twice: once at noon and once at night. 今天天气很好，我们去公园玩吧。好的！"
)


def cuts_inside_a_word(text: str, index: int) -> bool:
    from voxpipe.plugins.text.scripts import is_cjk

    before, after = text[index - 1], text[index]
    return before.isalnum() and after.isalnum() and not (is_cjk(before) and is_cjk(after))


@pytest.mark.parametrize("budget", [1000, 60, 30, 12, 5])
def test_offsets_budget_and_whole_words(budget):
    spans = split_text(LONG, budget)
    assert spans == split_text(LONG, budget)  # deterministic
    for span in spans:
        assert LONG[span.start:span.end] == span.text  # offsets into the input
        assert span.text == span.text.strip()
        assert len(span.text) <= budget or " " not in span.text  # only a lone word may exceed
        assert not cuts_inside_a_word(LONG, span.start) if span.start else True
        assert not cuts_inside_a_word(LONG, span.end) if span.end < len(LONG) else True
    # the chunks in order give the text back: nothing lost but whitespace
    assert "".join(s.text for s in spans).replace(" ", "") == LONG.replace(" ", "")
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_prefers_sentence_then_clause_then_word_cuts():
    text = "One two three. Four five, six seven."
    assert [s.text for s in split_text(text, 100)] == [text]
    assert [s.text for s in split_text(text, 25)] == ["One two three.", "Four five, six seven."]
    assert [s.text for s in split_text(text, 12)] == ["One two", "three.", "Four five,", "six seven."]


def test_no_cut_after_abbreviations_decimals_or_thousands():
    text = "Mr. Smith owes 1,000.50 dollars. Dr. Jones does not."
    assert [s.text for s in split_text(text, 35)] == ["Mr. Smith owes 1,000.50 dollars.", "Dr. Jones does not."]


def test_closing_quotes_stay_with_their_sentence():
    text = 'He said "Stop." Then he left.'
    assert [s.text for s in split_text(text, 16)] == ['He said "Stop."', "Then he left."]


def test_chinese_punctuation_and_characters():
    text = "今天天气很好，我们去公园玩吧。好的！走吧？"
    assert [s.text for s in split_text(text, 10)] == ["今天天气很好，", "我们去公园玩吧。", "好的！走吧？"]
    # no punctuation left to cut at: between characters, never losing one
    pieces = split_text("我们去公园玩吧", 3)
    assert [s.text for s in pieces] == ["我们去", "公园玩", "吧"]
    assert [s.text for s in split_text("ありがとう", 3)] == ["ありが", "とう"]


def test_a_word_longer_than_the_budget_is_kept_whole():
    spans = split_text("a supercalifragilistic word", 5)
    assert [s.text for s in spans] == ["a", "supercalifragilistic", "word"]


def test_budget_measured_by_a_callable():
    words = lambda piece: len(piece.split())  # noqa: E731
    spans = split_text(LONG, 6, measure=words)
    assert all(words(s.text) <= 6 for s in spans)
    assert " ".join(s.text for s in spans).split() == LONG.split()


def test_budget_measured_in_tokens():
    from pathlib import Path

    from voxpipe.plugins.tokenizers.emilia import EmiliaTokenizer

    tokens = Path(__file__).resolve().parent / "fixtures" / "zipvoice" / "tokens_emilia.txt"
    tokenizer = EmiliaTokenizer(str(tokens), backend="espeakng")
    count = lambda piece: len(tokenizer.tokenize(piece))  # noqa: E731
    text = "The quick brown fox jumps over the lazy dog. A second sentence follows, with a clause."
    spans = split_text(text, 40, measure=count)
    assert len(spans) > 1 and all(count(s.text) <= 40 for s in spans)


def test_empty_text_and_bad_budget():
    assert split_text("", 10) == [] and split_text("   \n", 10) == []
    with pytest.raises(ConfigError, match="budget"):
        split_text("text", 0)


DIALOG = "[S1] Hello there. How are you today, my friend? [S2] Fine, thanks! [S1] Good."


def test_whole_turns_are_packed_together():
    assert [s.text for s in split_text(DIALOG, 200)] == [DIALOG]
    assert [s.text for s in split_text(DIALOG, 50)] == [
        "[S1] Hello there. How are you today, my friend?", "[S2] Fine, thanks! [S1] Good.",
    ]


def test_a_turn_over_budget_is_cut_and_every_piece_keeps_its_tag():
    spans = split_text(DIALOG, 30)
    assert [s.text for s in spans] == [
        "[S1] Hello there.", "[S1] How are you today,", "[S1] my friend?", "[S2] Fine, thanks! [S1] Good.",
    ]
    for span in spans:
        assert re.match(r"\[S[12]\]", span.text)
        assert span.text.endswith(DIALOG[span.start:span.end])
        assert len(span.text) <= 30
    assert spans[1] == TextSpan("[S1] How are you today,", 18, 36)


def test_turns_are_never_cut_when_they_fit():
    text = "[S1] One. Two. [S2] Three. Four."
    spans = split_text(text, 15)
    assert [s.text for s in spans] == ["[S1] One. Two.", "[S2] Three.", "[S2] Four."]
    assert [s.text for s in split_text(text, 17)] == ["[S1] One. Two.", "[S2] Three. Four."]


def test_text_before_the_first_turn_is_its_own_piece():
    spans = split_text("Intro words. [S1] Hi. [S2] Yo.", 12)
    assert [s.text for s in spans] == ["Intro words.", "[S1] Hi.", "[S2] Yo."]


# -- ZipVoice's rule --------------------------------------------------------------------------
def test_add_punctuation():
    assert add_punctuation("  Hello world  ") == "Hello world."
    assert add_punctuation("你好？") == "你好？"
    assert add_punctuation("Wait;") == "Wait;"
    assert add_punctuation("Wait…") == "Wait…."  # "…" is not in the official set
    with pytest.raises(TextError):
        add_punctuation("   ")


def test_chunk_tokens_punctuation_attaches_leading_marks_and_merges():
    tokens = list("ab, cd. ef!? gh")
    assert chunk_tokens_punctuation(tokens, 100) == [tokens]
    assert chunk_tokens_punctuation(tokens, 5) == [list("ab, "), list("cd. "), list("ef!? "), list("gh")]
    assert chunk_tokens_punctuation(tokens, 8) == [list("ab, cd. "), list("ef!? gh")]
    # a piece longer than max_tokens stays whole
    assert chunk_tokens_punctuation(list("abcdef."), 3) == [list("abcdef.")]


def test_chunk_tokens_dialog_cuts_before_each_s1():
    tokens = ["[S1]", "a", "[S2]", "b", "[S1]", "c", "d"]
    assert chunk_tokens_dialog(tokens, 4) == [["[S1]", "a", "[S2]", "b"], ["[S1]", "c", "d"]]
    assert chunk_tokens_dialog(tokens, 100) == [tokens]
    assert ZipVoiceChunker(dialog=True).split_tokens(tokens, 4) == chunk_tokens_dialog(tokens, 4)


def test_max_tokens_for_prompt():
    # 3 s prompt of 60 tokens at speed 1: 0.05 s per token, (25 - 3) / 0.05 = 440
    assert max_tokens_for_prompt(3.0, 60, 1.0) == 440
    assert max_tokens_for_prompt(3.0, 60, 2.0) == 880
    with pytest.raises(TextError):
        max_tokens_for_prompt(3.0, 0)


def test_zipvoice_text_chunker():
    chunker = ZipVoiceChunker()
    text = "It is 3.14 today, Mr. Smith. 你好，世界。"
    spans = chunker.split(text, 12)
    assert [s.text for s in spans] == ["It is 3.14 today,", "Mr. Smith.", "你好，世界。"]
    assert all(text[s.start:s.end] == s.text for s in spans)
    assert ZipVoiceChunker(dialog=True).split("[S1] a b [S2] c [S1] d", 12)[0].text == "[S1] a b [S2] c"
    with pytest.raises(ConfigError):
        chunker.split_tokens(["a"], 0)


def test_built_from_validated_params():
    assert AutoNormalizer.from_params(AutoNormalizer.Params(fallback="chinese")).fallback == "chinese"
    assert ZipVoiceChunker.from_params(ZipVoiceChunker.Params(dialog=True)).dialog
    assert isinstance(PunctuationChunker.from_params(PunctuationChunker.Params()), PunctuationChunker)
