"""Text and JSON under abuse against a real ``bentoml serve`` (``bench/abuse/text.py`` at the issue's sizes, the same
functions): megabytes of prompt or chat text are refused with a 400 naming the field before anything is tokenised,
with the server's memory far from the gigabytes they cost before; JSON nested past any sense or cut short is a 400
that names a field, never a 500 or a character offset."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.abuse import text as abuse
from bench.abuse.case import Target
from bench.abuse.probe import MemoryProbe


@pytest.fixture(scope="module")
def target(server, corpus_dir) -> Target:
    with tempfile.TemporaryDirectory() as work:
        yield Target(server.url, "unused", corpus_dir, Path(work))


def test_an_8_mib_prompt_is_refused_before_it_is_tokenised(server, target):
    with MemoryProbe(server.process.pid) as probe:
        outcome = abuse.prompt_8mib(target)
    assert outcome.statuses == ["400 prompt"], outcome.notes
    assert probe.peak_above_start_mb < 50, "it cost 1.3 GB when it was tokenised"


def test_a_25_mb_chat_text_part_is_refused_before_it_is_tokenised(server, target):
    with MemoryProbe(server.process.pid) as probe:
        outcome = abuse.chat_text_25mb(target)
    assert outcome.statuses == ["400 messages.[0].content.[1].text"], outcome.notes
    assert probe.peak_above_start_mb < 100, "the body and its parse, twice 25 MB; it cost 4.8 GB when tokenised"


def test_a_realtime_prompt_of_a_megabyte_is_an_error_event_and_the_session_lives_on(server, target):
    """A megabyte: over the prompt's bound, under any bound the socket puts on a message (the bench sends 8 MB)."""
    pytest.importorskip("websockets")
    with MemoryProbe(server.process.pid) as probe:
        outcome = abuse.realtime_prompt(target, size=2**20)
    assert outcome.statuses[0] == "session.created" and outcome.statuses[-1] == "session.updated", outcome.statuses
    assert outcome.statuses[1].startswith("error ") and outcome.statuses[1].endswith("prompt"), outcome.statuses
    assert probe.peak_above_start_mb < 50, "an 8 MB one held 3.1 GB for the session"


@pytest.mark.parametrize(
    ("case", "statuses"),
    [
        (abuse.chunking_deep, ["400 chunking_strategy"]),
        (abuse.chunking_padding, ["400 chunking_strategy"]),
        (abuse.chat_truncated, ["400 (no param)"]),
        (abuse.chat_deep, ["400 messages"]),
        (abuse.keywords_controls, ["400 keywords", "400 keywords", "200 (no param)"]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_malformed_json_and_bad_text_are_400s_naming_their_field(target, case, statuses):
    outcome = case(target)
    assert outcome.statuses == statuses, outcome.notes
