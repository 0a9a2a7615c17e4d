"""Tokenizers reading tokens.txt: emilia, dialog, espeak, simple (voxpipe.plugins.tokenizers).

Official token sequences are checked in tests/parity/test_tokenizer_parity.py; these tests cover
the behaviour around them: vocabulary loading, visible unknown symbols, strict mode, segments,
backends and the espeak clause handling.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from voxpipe.core.errors import ConfigError, TextError, VoxpipeError
from voxpipe.plugins.tokenizers.emilia import DialogTokenizer, EmiliaTokenizer
from voxpipe.plugins.tokenizers.espeak import EspeakTokenizer
from voxpipe.plugins.tokenizers.espeak_backends import EspeakNGBackend, PiperBackend, make_backend
from voxpipe.plugins.tokenizers.espeak_clauses import clause_ending, split_phonemes
from voxpipe.plugins.tokenizers.inflect_numbers import number_to_words, ordinal_words
from voxpipe.plugins.tokenizers.segmentation import segment
from voxpipe.plugins.tokenizers.simple import SimpleTokenizer
from voxpipe.plugins.tokenizers.tracked_text import TrackedText
from voxpipe.plugins.tokenizers.vocabulary import UnknownSymbolError, UnknownSymbolWarning
from voxpipe.plugins.tokenizers.zipvoice_normalization import ZipVoiceEnglishNormalization
from voxpipe.testing.conformance import TokenizerConformance

HAS_PIPER = sys.version_info < (3, 12)
BACKENDS = ["espeakng"] + (["piper"] if HAS_PIPER else [])


VOCABULARIES = Path(__file__).resolve().parent / "fixtures" / "zipvoice"  # the official 360(+2)-token sets


def emilia_tokens() -> str:
    return str(VOCABULARIES / "tokens_emilia.txt")


def dialog_tokens() -> str:
    return str(VOCABULARIES / "tokens_dialog.txt")


@pytest.fixture
def char_tokens(tmp_path):
    """A tiny character vocabulary with a space token (must not be stripped)."""
    path = tmp_path / "tokens.txt"
    path.write_text("_\t0\n \t1\na\t2\nb\t3\nc\t4\n!\t5\n", encoding="utf-8")
    return str(path)


def encode_with_warnings(tokenizer, text):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = tokenizer.encode(text)
    return ids, [w for w in caught if issubclass(w.category, UnknownSymbolWarning)]


# -- conformance suites ----------------------------------------------------------------------
class TestEmiliaEspeakNGConformance(TokenizerConformance):
    sample_texts = ("Hello world.", "The quick brown fox, jumped!", "你好，世界。", "Mixed 中文 and English!")

    def make_tokenizer(self):
        return EmiliaTokenizer(emilia_tokens(), backend="espeakng")


class TestDialogConformance(TokenizerConformance):
    sample_texts = ("[S1]Hello.[S2]你好！", "[S1] How are you? [S2] Fine.")

    def make_tokenizer(self):
        return DialogTokenizer(dialog_tokens(), backend="espeakng")


class TestEspeakConformance(TokenizerConformance):
    def make_tokenizer(self):
        return EspeakTokenizer(emilia_tokens(), language="en-us", backend="espeakng")


class TestSimpleConformance(TokenizerConformance):
    sample_texts = ("abc", "a b!")

    def make_tokenizer(self):
        return SimpleTokenizer(emilia_tokens())


def test_registered_under_their_names(fresh_registry):
    expected = {"emilia": EmiliaTokenizer, "dialog": DialogTokenizer, "espeak": EspeakTokenizer, "simple": SimpleTokenizer}
    for name, cls in expected.items():
        assert fresh_registry.get("tokenizer", name).cls is cls


# -- vocabulary -----------------------------------------------------------------------------
def test_vocabulary_keeps_the_space_token_and_finds_the_pad(char_tokens):
    tokenizer = SimpleTokenizer(char_tokens)
    assert tokenizer.vocab[" "] == 1
    assert tokenizer.pad_id == 0
    assert tokenizer.encode("a b") == [2, 1, 3]
    assert tokenizer.describe() == {"vocab_size": 6, "pad_id": 0}


def test_emilia_vocabulary_size_and_pad_from_the_file():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    lines = [line for line in open(emilia_tokens(), encoding="utf-8").read().split("\n") if line]
    assert len(tokenizer.vocab) == len(lines)
    assert tokenizer.pad_id == tokenizer.vocab["_"]
    assert tokenizer.describe()["espeak_backend"] == "espeakng"


def test_missing_tokens_file_names_the_path(tmp_path):
    with pytest.raises(VoxpipeError, match="nope.txt"):
        SimpleTokenizer(str(tmp_path / "nope.txt"))


def test_malformed_tokens_file_is_a_config_error(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("_\t0\nno-tab-here\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no-tab-here"):
        SimpleTokenizer(str(path))


def test_tokens_file_without_pad_is_rejected(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("a\t0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="padding token '_'"):
        SimpleTokenizer(str(path))


def test_a_directory_means_its_tokens_txt(char_tokens):
    from pathlib import Path

    assert SimpleTokenizer(str(Path(char_tokens).parent)).vocab[" "] == 1


# -- unknown symbols ------------------------------------------------------------------------
def test_unknown_characters_warn_once_naming_them_and_their_positions(char_tokens):
    tokenizer = SimpleTokenizer(char_tokens)
    ids, reports = encode_with_warnings(tokenizer, "ab€c£")
    assert ids == [2, 3, 4]  # dropped, as the official tokenizer does
    assert len(reports) == 1
    message = str(reports[0].message)
    assert "'€' at 2" in message and "'£' at 4" in message
    assert [(d.symbol, d.start, d.end) for d in reports[0].message.symbols] == [("€", 2, 3), ("£", 4, 5)]


def test_strict_mode_raises_with_the_same_information(char_tokens):
    tokenizer = SimpleTokenizer(char_tokens, strict=True)
    with pytest.raises(TextError, match="'€' at 2") as raised:
        tokenizer.encode("ab€c")
    assert isinstance(raised.value, UnknownSymbolError)
    assert [(d.symbol, d.start) for d in raised.value.symbols] == [("€", 2)]
    assert tokenizer.encode("abc") == [2, 3, 4]


def test_known_text_does_not_warn(char_tokens):
    _, reports = encode_with_warnings(SimpleTokenizer(char_tokens), "abc!")
    assert reports == []


def test_tokenize_is_silent_and_keeps_unknown_tokens(char_tokens):
    tokenizer = SimpleTokenizer(char_tokens, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tokenizer.tokenize("a€") == ["a", "€"]


def test_tokens_to_ids_drops_unknown_and_strict_names_them(char_tokens):
    assert SimpleTokenizer(char_tokens).tokens_to_ids(["a", "€", "b"]) == [2, 3]
    with pytest.raises(UnknownSymbolError, match="'€'"):
        SimpleTokenizer(char_tokens, strict=True).tokens_to_ids(["a", "€"])


def test_emilia_reports_mapped_punctuation_at_its_input_position():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    ids, reports = encode_with_warnings(tokenizer, "你好...再见")
    assert len(reports) == 1
    (dropped,) = reports[0].message.symbols
    assert (dropped.symbol, dropped.start, dropped.end) == ("…", 2, 5)  # "..." became "…"
    assert "from '...'" in str(reports[0].message)
    assert ids == tokenizer.encode("你好再见")


def test_emilia_reports_a_text_without_letters_as_skipped():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    ids, reports = encode_with_warnings(tokenizer, "123 !")
    assert ids == []  # the official tokenizer skips a segment of unknown language
    assert "no English or Chinese letters" in str(reports[0].message)
    with pytest.raises(TextError, match="'123 !' at 0:5"):
        EmiliaTokenizer(emilia_tokens(), backend="espeakng", strict=True).encode("123 !")


def test_emilia_reports_invalid_inline_pinyin():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    ids, reports = encode_with_warnings(tokenizer, "你好<abc>")
    assert ids == tokenizer.encode("你好")
    assert "'<abc>' at 2:7" in str(reports[0].message)


# -- emilia front-end behaviour ---------------------------------------------------------------
def test_inline_pinyin_and_tags():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    assert tokenizer.tokenize("<hao3>") == ["h0", "ao3"]
    assert tokenizer.tokenize("<er4>") == ["er4"]
    assert tokenizer.tokenize("好[laugh]好") == ["h0", "ao3", "[laugh]", "h0", "ao3"]


def test_segments_split_by_script_like_the_official_example():
    pieces = segment(TrackedText.of("我们是小米人,是吗? Yes I think so!霍...啦啦啦"))
    assert [(p.text.text, p.language) for p in pieces] == [
        ("我们是小米人,是吗? ", "zh"), ("Yes I think so!", "en"), ("霍...啦啦啦", "zh"),
    ]
    assert [p.text.span() for p in pieces] == [(0, 11), (11, 26), (26, 33)]


def test_newlines_are_removed_as_officially():
    tokenizer = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    assert tokenizer.tokenize("Hello\nworld") == tokenizer.tokenize("Helloworld")


def test_numbers_are_spelled_out_unless_normalization_is_off():
    spelled = EmiliaTokenizer(emilia_tokens(), backend="espeakng")
    raw = EmiliaTokenizer(emilia_tokens(), backend="espeakng", normalize=False)
    # ZipVoice reads 2024 as a year; espeak on its own says "two thousand twenty-four"
    assert spelled.tokenize("In 2024.") == spelled.tokenize("In twenty twenty-four.")
    assert raw.tokenize("In 2024.") != spelled.tokenize("In 2024.")
    assert spelled.tokenize("今天3点") == spelled.tokenize("今天三点")


def test_dialog_tags_are_single_tokens_and_surrounding_spaces_removed():
    tokenizer = DialogTokenizer(dialog_tokens(), backend="espeakng")
    assert tokenizer.tokenize("[S1] Hi. [S2] 好。") == tokenizer.tokenize("[S1]Hi.[S2]好。")
    tokens = tokenizer.tokenize("[S1]Hi.[S2]好。")
    assert tokens[0] == "[S1]" and "[S2]" in tokens
    assert tokenizer.encode("[S1]Hi.")[0] == tokenizer.spk_a_id
    assert tokenizer.describe()["spk_b_id"] == tokenizer.vocab["[S2]"]


def test_dialog_needs_speaker_tokens():
    with pytest.raises(ConfigError, match=r"\[S1\]"):
        DialogTokenizer(emilia_tokens(), backend="espeakng")


def test_params_validate_backend_names():
    params = EmiliaTokenizer.Params(tokens="x")
    assert params.backend == "auto" and params.strict is False and params.normalize is True
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        EmiliaTokenizer.Params(tokens="x", backend="festival")


# -- espeak tokenizer -------------------------------------------------------------------------
def test_espeak_tokenizer_any_language():
    tokenizer = EspeakTokenizer(emilia_tokens(), language="es", backend="espeakng")
    tokens = tokenizer.tokenize("Hola, amigo.")
    assert tokens[-1] == "." and ", " in "".join(tokens)
    assert tokenizer.describe()["language"] == "es"


@pytest.mark.parametrize("backend", BACKENDS)
def test_espeak_tokenizer_rejects_unknown_language(backend):
    with pytest.raises(ConfigError, match="no-such-voice"):
        EspeakTokenizer(emilia_tokens(), language="no-such-voice", backend=backend)


# -- espeak backends --------------------------------------------------------------------------
def test_auto_backend_prefers_piper_when_importable(monkeypatch):
    assert make_backend("auto").name == ("piper" if HAS_PIPER else "espeakng")
    monkeypatch.setitem(sys.modules, "piper_phonemize", None)  # import now fails
    assert make_backend("auto").name == "espeakng"
    with pytest.raises(ConfigError, match="piper-phonemize"):
        make_backend("piper")


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="festival"):
        make_backend("festival")


@pytest.mark.parametrize(
    "clause, appended",
    [
        ("Hello world, ", ", "), ("a test.", "."), ("Really?!", "?"), ("No way!?", "!"),
        ("Wait...", ""), ("Wait..", "."), ("one: ", ": "), ("two;", "; "), ("a –", "; "),
        ('He said "hi."', "."), ("x。", ""), ("!", ""), ("no mark", ""), ("Hi.\n\n", ""), ("Hi.\n", "."),
    ],
)
def test_clause_ending_follows_piper(clause, appended):
    assert clause_ending(clause) == appended


def test_phonemes_are_nfd_code_points_without_language_flags():
    # piper drops the "(en)" flags themselves; the words between them stay
    assert split_phonemes("ç(en)ab(fr)d") == ["c", "\u0327", "a", "b", "d"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_result_does_not_depend_on_the_previous_text(backend):
    espeak = make_backend(backend)
    fresh = espeak.phonemize("Note: if", "en-us")
    espeak.phonemize("superscript digits..", "en-us")  # espeak keeps a character past ".."
    assert espeak.phonemize("Note: if", "en-us") == fresh


def test_espeakng_spells_o_r_vowels_as_piper():
    sentences = EspeakNGBackend().phonemize("four more, or sorted", "en-us")
    assert "".join(sentences[0]) == "fˈoːɹ mˈoːɹ, ɔːɹ sˈɔːɹɾᵻd"


@pytest.mark.skipif(not HAS_PIPER, reason="piper-phonemize has wheels for CPython < 3.12 only")
def test_backends_agree_on_mixed_punctuation():
    text = 'Hello world, this is a test. Wait... what? "Yes!" a: b; c – d (e) 3.14, Mr. Smith.\n\nNew paragraph'
    assert EspeakNGBackend().phonemize(text, "en-us") == PiperBackend().phonemize(text, "en-us")


# -- inflect's number words (reproduced; inflect 7.6.0 produced every expected string) --------
INFLECT_CASES = [
    (0, {"andword": ""}, "zero"),
    (1, {"andword": ""}, "one"),
    (13, {"andword": ""}, "thirteen"),
    (21, {"andword": ""}, "twenty-one"),
    (101, {"andword": ""}, "one hundred one"),
    (110, {"andword": ""}, "one hundred ten"),
    (1001, {"andword": ""}, "one thousand one"),
    (1100, {"andword": ""}, "one thousand, one hundred"),
    (1234, {"andword": ""}, "one thousand, two hundred thirty-four"),
    (100001, {"andword": ""}, "one hundred thousand one"),
    (1002003, {"andword": ""}, "one million, two thousand three"),
    (123456789012, {"andword": ""},
     "one hundred twenty-three billion, four hundred fifty-six million, seven hundred eighty-nine thousand twelve"),
    (101, {}, "one hundred and one"),
    (1001, {}, "one thousand and one"),
    (2024, {}, "two thousand and twenty-four"),
    (1066, {"andword": "", "zero": "oh", "group": 2}, "ten, sixty-six"),
    (1905, {"andword": "", "zero": "oh", "group": 2}, "nineteen, oh five"),
    (2100, {"andword": "", "zero": "oh", "group": 2}, "twenty-one, oh oh"),
    (12345, {"andword": "", "zero": "oh", "group": 2}, "one, twenty-three, forty-five"),
    ("1st", {}, "first"),
    ("3rd", {}, "third"),
    ("11th", {}, "eleventh"),
    ("12th", {}, "twelfth"),
    ("20th", {}, "twentieth"),
    ("21st", {}, "twenty-first"),
    ("101st", {}, "one hundred and first"),
    ("1000th", {}, "one thousandth"),
]


@pytest.mark.parametrize("number, options, expected", INFLECT_CASES)
def test_number_words_are_inflects(number, options, expected):
    assert number_to_words(number, **options) == expected


def test_ordinal_words_are_inflects():
    assert [ordinal_words(w) for w in ("three", "twenty", "twelve", "six", "one hundred and five")] == [
        "third", "twentieth", "twelfth", "sixth", "one hundred and fifth",
    ]


def test_zipvoice_english_normalization():
    normalize = ZipVoiceEnglishNormalization()
    assert normalize("Mr. Smith paid $5.50 on Jan. 3rd, 2024?") == (
        "mister. Smith paid   five  dollars,  fifty  cents  on Jan.  third ,  twenty twenty-four ?"
    )
    # official quirks kept: "two third" (not "thirds"), extra spaces (espeak ignores them)
    assert normalize("1/2, 3/4, 2/3, 1905, 2000, 2005, 1900, 12.5%") == (
        " one half ,  three quarters ,  two third ,  nineteen oh five ,  two thousand ,  two thousand five , "
        " nineteen hundred ,  twelve  point  five  percent "
    )


def test_built_from_validated_params(char_tokens):
    built = EmiliaTokenizer.from_params(EmiliaTokenizer.Params(tokens=emilia_tokens(), backend="espeakng", strict=True))
    assert built.strict and built.backend.name == "espeakng"
    espeak = EspeakTokenizer.from_params(EspeakTokenizer.Params(tokens=emilia_tokens(), language="es", backend="espeakng"))
    assert espeak.language == "es"
    assert SimpleTokenizer.from_params(SimpleTokenizer.Params(tokens=char_tokens)).vocab["a"] == 2


def test_dialog_positions_survive_the_tag_whitespace_removal():
    tokenizer = DialogTokenizer(dialog_tokens(), backend="espeakng")
    _, reports = encode_with_warnings(tokenizer, "[S1]  你好...  [S2] 好")
    (dropped,) = reports[0].message.symbols
    assert (dropped.symbol, dropped.start, dropped.end) == ("…", 8, 11)
