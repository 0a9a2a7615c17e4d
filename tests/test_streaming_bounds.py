"""Streaming stays bounded: planning run-on text pushed one character at a time takes work
linear in its length, and a session dropped without close() or draining ends its thread.

Work is counted, not timed: the lines executed in the planner and the sentence rule (a
`sys.settrace` count, deterministic and independent of machine load) for N and 4N characters.
"""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
import types

import pytest

from voxpipe.core.pipeline import Pipeline
from voxpipe.streaming import StreamingSession, TextPlanner
from voxpipe.streaming.chunking import final_sentence_spans
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT as PROMPT_TEXT
from voxpipe.testing.threads import one_torch_thread
from voxpipe.testing.fixtures import fixtures_root, tiny_pipeline_config

TRACED_FILES = ("voxpipe/streaming/chunking.py", "voxpipe/core/sentences.py")


def lines_executed(work) -> int:
    """Lines run in TRACED_FILES while `work()` runs."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_trace(frame, event, arg):
        return local if frame.f_code.co_filename.replace("\\", "/").endswith(TRACED_FILES) else None

    sys.settrace(global_trace)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def planner(normalizer=None) -> TextPlanner:
    """A planner whose pipeline only has a normalizer: run-on text never reaches the rest."""
    return TextPlanner(types.SimpleNamespace(normalizer=normalizer), budget=1000)


RUN_ON = {
    "english words, commas, decimals and abbreviations": "and then, at version 3.14 e.g. a Mr. Smith walked on ",
    "CJK without sentence marks": "我们今天去公园玩，然后回家吃饭、",
    "dotted letters without spaces": "a.b.c.d.",
}


@pytest.mark.parametrize("piece", RUN_ON.values(), ids=RUN_ON.keys())
def test_planning_run_on_text_pushed_per_character_is_linear(piece):
    def push_one_by_one(size: int):
        text = (piece * (size // len(piece) + 1))[:size]
        plan = planner()

        def work():
            for char in text:
                plan.push(char)
                assert plan.ready() == []  # no sentence has ended: nothing to plan yet

        return work

    small, large = (lines_executed(push_one_by_one(size)) for size in (500, 2000))
    # linear: ~4x the work for 4x the text; the full rescan per push was quadratic (~16x)
    assert large < 6 * small, (small, large)


class JoinsDates:
    """A normalizer whose rule reads across sentence ends ("Jan. 3" -> "January 3")."""

    def normalize(self, text: str) -> str:
        return text.replace("Jan. ", "January ")


@pytest.mark.parametrize("normalizer", [None, JoinsDates()], ids=["no normalizer", "non-local normalizer"])
def test_incremental_sentence_ends_equal_a_rescan_after_every_push(normalizer):
    rng = random.Random(7)
    words = ["Hi.", "Mr.", "Smith", "e.g.", "3.14", "Wow!", "why?", "…", "。", "」", "好", "Jan.", "3", "A.",
             '"', "ok", "!?", "…」", "x.", " ", " ", "  "]
    for _ in range(40):
        text = "".join(rng.choice(words) + rng.choice(["", " ", " "]) for _ in range(rng.randint(5, 30)))
        plan = planner(normalizer)
        position = 0
        while position < len(text):
            step = rng.randint(1, 3)
            plan.push(text[position:position + step])
            position += step
            cut = plan._raw_cut
            expected = [cut + end for _, end in final_sentence_spans(plan.raw[cut:])]
            assert plan._final_sentence_ends() == expected, (text, plan.raw)
            plan._normalize_final_sentences()  # moves the cut as ready() does


# ---- abandoned sessions ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline():
    with one_torch_thread():
        yield Pipeline.from_config(tiny_pipeline_config())


@pytest.fixture(scope="module")
def voice(pipeline):
    return pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)


def ends_within(thread: threading.Thread, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while thread.is_alive() and time.monotonic() < deadline:
        gc.collect()
        thread.join(timeout=0.1)
    return not thread.is_alive()


def test_a_session_dropped_while_waiting_for_text_ends_its_thread(pipeline, voice):
    session = StreamingSession(pipeline, voice, seed=1)
    session.push_text("An unfinished sentence that never")
    worker = session._worker
    assert worker.is_alive()
    del session  # never flushed, never closed
    assert ends_within(worker, 10), "the worker of a dropped session still runs"


def test_a_session_dropped_with_undrained_audio_ends_its_thread(pipeline, voice, monkeypatch):
    calls = []
    synthesize = StreamingSession._synthesize
    monkeypatch.setattr(StreamingSession, "_synthesize", lambda self, chunk: calls.append(1) or synthesize(self, chunk))
    session = StreamingSession(pipeline, voice, seed=1, max_pending=1)
    session.push_text("One. Two. Three. Four.")
    session.flush()
    worker = session._worker
    deadline = time.monotonic() + 60
    while session.pending < 1 and time.monotonic() < deadline:  # the queue is full: the worker waits
        time.sleep(0.05)
    time.sleep(0.5)
    assert session.pending == 1 and len(calls) <= 2  # one chunk queued, one waiting for room: bounded
    del session  # never read, never closed
    assert ends_within(worker, 30), "the worker of a dropped session still runs"
