"""The inprocess executor on the project's transcriber with fake engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bulk.executors.base import Done, Failed, GaveUp
from bulk.executors.inprocess import InprocessExecutor
from bulk.manifest import Item
from core.errors import ModelUnavailableError
from tests.fakes import FakeModels
from tests.support.transcribers import chat_transcriber


def tone_file(tmp_path: Path, wav_bytes: Callable[..., bytes], seconds: float = 2.0) -> str:
    path = tmp_path / f"tone-{seconds}.wav"
    path.write_bytes(wav_bytes(seconds=seconds))
    return str(path)


def test_items_are_transcribed_in_this_process(tmp_path: Path, wav_bytes, fake_models: FakeModels):
    audio = tone_file(tmp_path, wav_bytes)
    run = InprocessExecutor(chat_transcriber(fake_models), concurrency=2)
    outcomes = sorted(run.run([Item(id=f"i{i}", audio=audio) for i in range(4)]), key=lambda o: o.item.id)
    assert [o.item.id for o in outcomes] == ["i0", "i1", "i2", "i3"]
    for outcome in outcomes:
        assert isinstance(outcome, Done) and outcome.model == "asr" and outcome.audio_s == 2.0
        assert outcome.text == outcome.response["text"] and "heard" in outcome.text
    assert sum(run.stats.per_worker.values()) == 4


def test_the_output_is_the_body_the_route_gives_in_the_items_format(tmp_path: Path, wav_bytes, fake_models):
    """One output contract for every executor: the route's body (pipeline.response_formats), verbose_json unless
    the item names another format."""
    audio = tone_file(tmp_path, wav_bytes)
    run = InprocessExecutor(chat_transcriber(fake_models), concurrency=1)
    items = [Item(id="default", audio=audio), Item(id="srt", audio=audio, response_format="srt")]
    outcomes = {o.item.id: o for o in run.run(items)}
    verbose = outcomes["default"].response
    assert isinstance(verbose, dict) and {"task", "language", "duration", "text", "segments"} <= verbose.keys()
    assert verbose["task"] == "transcribe" and verbose["duration"] == 2.0
    subtitles = outcomes["srt"].response
    assert isinstance(subtitles, str) and subtitles.startswith("1\n00:00:00,000 --> ") and "heard" in subtitles


def test_a_domain_error_the_item_would_hit_again_is_permanent(tmp_path: Path, wav_bytes, fake_models: FakeModels):
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("not audio")
    run = InprocessExecutor(chat_transcriber(fake_models, max_audio_duration_s=1.0), concurrency=1)
    items = [Item(id="text", audio=str(not_audio)), Item(id="model", audio=tone_file(tmp_path, wav_bytes, 0.5),
             model="nope"), Item(id="long", audio=tone_file(tmp_path, wav_bytes, 3.0))]
    outcomes = {o.item.id: o for o in run.run(items)}
    assert all(isinstance(o, Failed) for o in outcomes.values())
    assert outcomes["model"].error["error"]["param"] == "model"
    assert outcomes["long"].error["error"]["type"] == "too_large"
    assert outcomes["text"].error["error"]["type"] == "unsupported_media"


def test_an_unavailable_model_is_retried_then_left_for_the_next_run(tmp_path: Path, wav_bytes, fake_models):
    fake_models.fail_with = ModelUnavailableError("the model failed to load", retry_after_s=0.01)
    transcriber = chat_transcriber(fake_models)
    transcriber.pool.limits = replace(transcriber.pool.limits, load_retry_after_s=0)  # no pause between loads
    run = InprocessExecutor(transcriber, concurrency=1, max_attempts=3, retry_pause_s=0.01)
    [outcome] = list(run.run([Item(id="a", audio=tone_file(tmp_path, wav_bytes))]))
    assert isinstance(outcome, GaveUp) and outcome.attempts == 3 and run.stats.retries == 2
    fake_models.fail_with = None
    [outcome] = list(run.run([Item(id="a", audio=tone_file(tmp_path, wav_bytes))]))
    assert isinstance(outcome, Done)
