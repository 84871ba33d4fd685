from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from stt.batching import BatcherClosed, ClipBatcher
from stt.results import Transcription, TranscribeOptions


class RecordingDecoder:
    """Echoes each clip's length; records the batches; can hold a batch until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], TranscribeOptions]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_with: Exception | None = None

    def __call__(self, clips, options):
        self.batches.append(([len(c) for c in clips], options))
        assert self.release.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        return [Transcription(text=str(len(c)), language=options.language, duration=0, segments=[]) for c in clips]


def _clip(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def test_clips_waiting_together_are_decoded_in_one_batch_in_order():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.5)
    futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2, 3)]
    # Nothing fills the batch: it goes when the oldest clip has waited max_wait_s.
    assert [f.result(5).text for f in futures] == ["1", "2", "3"]
    assert [sizes for sizes, _ in decoder.batches] == [[1, 2, 3]]
    batcher.close()


def test_a_full_batch_goes_at_once_and_the_rest_forms_the_next():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=2, max_wait_s=60)
    started = time.monotonic()
    results = batcher.decode([_clip(n) for n in (1, 2, 3, 4)], TranscribeOptions())
    assert time.monotonic() - started < 30, "full batches must not wait for the timeout"
    assert [r.text for r in results] == ["1", "2", "3", "4"]
    assert [sizes for sizes, _ in decoder.batches] == [[1, 2], [3, 4]]
    batcher.close()


def test_clips_queued_while_a_batch_runs_form_the_next_batch_without_waiting():
    decoder = RecordingDecoder()
    decoder.release.clear()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.0)
    first = batcher.submit(_clip(1), TranscribeOptions())
    while not decoder.batches:
        time.sleep(0.005)
    later = [batcher.submit(_clip(n), TranscribeOptions()) for n in (2, 3, 4)]
    decoder.release.set()
    assert first.result(5).text == "1" and [f.result(5).text for f in later] == ["2", "3", "4"]
    assert [sizes for sizes, _ in decoder.batches] == [[1], [2, 3, 4]]
    batcher.close()


def test_different_decoding_options_never_share_a_batch():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.2)
    english, portuguese = TranscribeOptions(language="en"), TranscribeOptions(language="pt")
    futures = [batcher.submit(_clip(n), o) for n, o in [(1, english), (2, portuguese), (3, english)]]
    assert [f.result(5).language for f in futures] == ["en", "pt", "en"]
    assert sorted((sizes, o.language) for sizes, o in decoder.batches) == [([1, 3], "en"), ([2], "pt")]
    batcher.close()


def test_concurrent_requests_share_batches():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=4, max_wait_s=0.2)
    barrier = threading.Barrier(4)
    texts: dict[int, str] = {}

    def request(n: int) -> None:
        barrier.wait()
        [result] = batcher.decode([_clip(n)], TranscribeOptions())
        texts[n] = result.text

    threads = [threading.Thread(target=request, args=(n,)) for n in (5, 6, 7, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert texts == {5: "5", 6: "6", 7: "7", 8: "8"}
    assert sorted(len(sizes) for sizes, _ in decoder.batches) == [4]


def test_an_engine_error_reaches_every_request_in_the_batch_and_the_worker_survives():
    decoder = RecordingDecoder()
    decoder.fail_with = RuntimeError("CUDA out of memory")
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.1)
    futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2)]
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result(5)
    decoder.fail_with = None
    assert batcher.decode([_clip(3)], TranscribeOptions())[0].text == "3"
    batcher.close()


def test_close_fails_queued_clips_and_refuses_new_ones():
    decoder = RecordingDecoder()
    decoder.release.clear()
    batcher = ClipBatcher(decoder, max_batch_size=1, max_wait_s=0.0)
    running = batcher.submit(_clip(1), TranscribeOptions())
    while not decoder.batches:
        time.sleep(0.005)
    queued = batcher.submit(_clip(2), TranscribeOptions())
    batcher.close()
    with pytest.raises(BatcherClosed):
        queued.result(5)
    with pytest.raises(BatcherClosed):
        batcher.submit(_clip(3), TranscribeOptions())
    decoder.release.set()
    assert running.result(5).text == "1"
