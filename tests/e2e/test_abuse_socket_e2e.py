"""The realtime socket under abuse, against a real ``bentoml serve`` with small bounds (``bench/abuse/socket.py``
runs the same cases at the issue's sizes): a message over the bound closes the socket before it is read; a client
that floods and never reads is closed with 1008 and its memory stays bounded; sessions over the key's bound are
refused with a clear error; malformed frames get error events and the session lives on; a page of another origin is
refused; one session flooding live audio does not make other clients' file requests fail."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest

from bench.abuse import socket as abuse
from bench.abuse.case import Target
from bench.abuse.probe import MemoryProbe
from bench.server import running_server

KEY = "sk-abuse-socket"


@pytest.fixture(scope="module")
def socket_server(corpus_dir):
    pytest.importorskip("websockets")
    env = {
        "STT_API_KEYS": KEY,
        "STT_REALTIME_MAX_SESSIONS_PER_KEY": "3",
        "STT_REALTIME_MAX_SEND_QUEUE_MB": "0.5",
        "STT_REALTIME_MAX_MESSAGE_MB": "1",
        # A model queue a dozen live turns ended at once would fill: the session keeps its turns to itself.
        "STT_MAX_QUEUED_PER_MODEL": "4",
        "STT_REALTIME_PARTIAL_SLOTS": "2",
    }
    with running_server(env) as running:
        yield running


@pytest.fixture(scope="module")
def target(socket_server, corpus_dir) -> Target:
    with tempfile.TemporaryDirectory() as work:
        yield Target(socket_server.url, KEY, corpus_dir, Path(work))


def test_a_message_over_the_bound_closes_the_socket_before_it_is_read(socket_server, target):
    with MemoryProbe(socket_server.process.pid) as probe:
        outcome = abuse.non_reading_flooder(target, big_frames=4, frame_mib=8, small_frames=0)
    # 1009, or a reset that overtook it (the client was still sending); either way the server ended it early.
    assert outcome.statuses in (["close 1009"], ["reset while sending"]), outcome.notes
    assert outcome.notes.startswith(("0 x", "1 x", "2 x")), outcome.notes
    assert probe.peak_above_start_mb < 50


def test_a_client_that_floods_and_never_reads_is_closed_with_1008_and_costs_little_memory(socket_server, target):
    with MemoryProbe(socket_server.process.pid) as probe:
        outcome = abuse.non_reading_flooder(target, big_frames=8, frame_mib=0.9, small_frames=100_000)
    assert outcome.statuses == ["close 1008"], outcome.notes
    assert "not reading" in outcome.notes
    assert probe.peak_above_start_mb < 100


def test_sessions_over_the_keys_bound_are_refused_with_a_clear_error(target):
    outcome = abuse.many_sockets(target, sockets=5)
    assert outcome.statuses == ["session.created"] * 3 + ["error session_limit_reached + close 1013"] * 2
    assert "Your API key already has 3 realtime sessions open" in outcome.notes


def test_malformed_frames_get_error_events_and_the_session_lives_on(target):
    outcome = abuse.malformed_frames(target)
    assert outcome.statuses[:-1] == ["error invalid_json"] * 4 + ["error invalid_value"] * 4
    assert outcome.statuses[-1] == "turn completed" and outcome.notes != "then the turn: ''"


def test_a_page_of_another_origin_is_refused_and_the_own_page_is_not(target):
    assert abuse.other_origin(target).statuses == ["evil.example: 403 origin_not_allowed", "own page: session.created"]


def test_one_session_flooding_live_audio_does_not_fail_other_clients_files(target):
    outcome = abuse.live_flood(target, minutes=1.5, file_every_s=0.3, solo_runs=1)
    counted = Counter(outcome.statuses)
    files = {status: n for status, n in counted.items() if status.startswith("file")}
    assert set(files) == {"file 200"}, outcome.notes
    assert counted["turn completed"] >= 3 and not counted["turn failed"], outcome.notes
    assert "input_audio_too_fast" in outcome.notes  # what came beyond 30 s ahead of 4x real time
