"""How piper-phonemize turns espeak-ng's clauses into phoneme lists, as pure functions.

piper's `phonemize_espeak` asks espeak-ng for one clause at a time together with the clause's
terminator, NFD-decomposes the IPA into code points, drops "(lang)" switch flags and appends the
terminator's punctuation: "." "?" "!" alone (and a new sentence starts), "," ":" ";" followed by
a space. Stock espeak-ng does not return the terminator, so `clause_ending` reads it back from
the clause's source text with espeak-ng's own table of clause-ending characters.
"""

from __future__ import annotations

import unicodedata

# Punctuation piper appends after a clause, keyed by the character espeak ended the clause on
# (espeak-ng's punct_chars whose clause type survives piper's `terminator & 0xFFFFF` test).
# Characters espeak marks "optional space after" (CJK and fullwidth marks, ellipsis, inverted
# marks, danda) end a clause but get nothing appended: piper's equality test fails on them.
_APPENDED = {
    ",": ", ", ".": ".", "?": "?", "!": "!", ":": ": ", ";": "; ",
    "\u2013": "; ", "\u2014": "; ",  # en dash, em dash: CLAUSE_SEMICOLON
    "\u037e": "?", "\u0387": "; ",  # Greek question mark, ano teleia
    "\u055d": ", ", "\u055c": "!", "\u055e": "?", "\u055b": ".",  # Armenian
    "\u060c": ", ", "\u061b": "; ", "\u061f": "?", "\u06d4": ".",  # Arabic
    "\u1362": ".", "\u1363": ", ", "\u1364": "; ", "\u1365": ": ", "\u1366": ": ", "\u1367": "?",  # Ethiopic
}
_OPTIONAL_SPACE_MARKS = set(
    "\u00a1\u00bf\u2026\u0964\u0df4\u0f0d\u0f0e\u1368\u10fb"  # inverted marks, ellipsis, dandas, paragraph marks
    "\u3001\u3002\uff01\uff0c\uff0e\uff1a\uff1b\uff1f"  # ideographic and fullwidth punctuation
)
_CLAUSE_MARKS = set(_APPENDED) | _OPTIONAL_SPACE_MARKS
SENTENCE_END = {".", "?", "!"}
# Marks that end a sentence although piper appends nothing after them.
_SILENT_SENTENCE_MARKS = set("\u0964\u0df4\u0f0d\u0f0e\u1368\u10fb\u3002\uff01\uff0e\uff1f")
# Closing quotes and brackets may stand after the mark that ends a clause.
_CLOSERS = set("\"'\u201d\u2019\u00bb\u203a)]}>\u300d\u300f\u3011\uff09")


def split_phonemes(phonemes: str) -> list[str]:
    """espeak's IPA string -> code points after NFD, without "(lang)" switch flags (as piper)."""
    out: list[str] = []
    in_flag = False
    for char in unicodedata.normalize("NFD", phonemes):
        if in_flag:
            in_flag = char != ")"
        elif char == "(":
            in_flag = True
        else:
            out.append(char)
    return out


def clause_ending(clause_text: str) -> str:
    """The punctuation piper appends after a clause whose source text is `clause_text`.

    The clause's last punctuation run (before closing quotes/brackets) decides; within a run
    such as "?!" the first mark wins, as espeak ends the clause on it. "..." (three dots or
    more) is espeak's ellipsis: nothing is appended; ".." is a period. Before a blank line
    (a paragraph end) nothing is appended whatever the mark.
    """
    if ends_paragraph(clause_text):
        return ""  # a blank line is espeak's paragraph end: it replaces the mark
    text = clause_text.rstrip()
    while text and text[-1] in _CLOSERS:
        text = text[:-1].rstrip()
    end = len(text)
    start = end
    while start > 0 and (text[start - 1] in _CLAUSE_MARKS):
        start -= 1
    run = text[start:end]
    if not run or not any(char.isalnum() for char in text[:start]):
        return ""  # a clause of punctuation only is read out as words: espeak reports no mark
    if run.startswith("...") or run[0] in _OPTIONAL_SPACE_MARKS:
        return ""  # espeak reads three or more dots as an ellipsis
    return _APPENDED.get(run[0], "")


def ends_paragraph(clause_text: str) -> bool:
    """A clause followed by a blank line (two newlines among its trailing whitespace)."""
    return clause_text[len(clause_text.rstrip()):].count("\n") >= 2


def ends_sentence_silently(clause_text: str) -> bool:
    """True when the clause ends a sentence without punctuation being appended: a blank line
    (espeak's paragraph) or a sentence mark of the "optional space after" kind ("。", "！")."""
    if ends_paragraph(clause_text):
        return True
    text = clause_text.rstrip()
    while text and text[-1] in _CLOSERS:
        text = text[:-1].rstrip()
    return bool(text) and text[-1] in _SILENT_SENTENCE_MARKS


def piper_vowels(ipa: str, ascii_: str, separator: str) -> str:
    """Join one clause's phonemes, spelling espeak's `o@` as piper's espeak does.

    espeak-ng 1.52 writes both `o@` ("more", "four") and `O@` ("or", "order") as "ɔː"; the
    espeak-ng fork inside piper-phonemize writes `o@` as "oː". The ASCII output (same phoneme
    boundaries) tells them apart.
    """
    ipa_words, ascii_words = ipa.split(" "), ascii_.split(" ")
    if len(ipa_words) != len(ascii_words):
        return ipa.replace(separator, "")
    words = []
    for ipa_word, ascii_word in zip(ipa_words, ascii_words):
        ipa_phones, ascii_phones = ipa_word.split(separator), ascii_word.split(separator)
        if len(ipa_phones) == len(ascii_phones):
            ipa_phones = [
                phone.replace("ɔː", "oː") if name.lstrip("',") == "o@" else phone
                for phone, name in zip(ipa_phones, ascii_phones)
            ]
        words.append("".join(ipa_phones))
    return " ".join(words)
