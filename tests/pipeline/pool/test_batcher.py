from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pipeline.pool.batcher import BatcherClosed, ClipBatcher
from pipeline.pool.share import Share
from core.types import Transcription, TranscribeOptions


class RecordingDecoder:
    """Echoes each clip's length; records the batches; can hold a batch until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], TranscribeOptions]] = []
        self.release = threading.Event()
        self.release.set()
        self.fail_with: Exception | None = None
        self.delay_s = 0.0

    def __call__(self, clips, options):
        self.batches.append(([len(c) for c in clips], options))
        assert self.release.wait(5)
        time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        return [Transcription(text=str(len(c)), language=options.language, duration=0, segments=[]) for c in clips]


def _clip(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def _busy(batcher: ClipBatcher, decoder: RecordingDecoder):
    """Hold the worker on a first clip, so that what is submitted next queues up."""
    decoder.release.clear()
    first = batcher.submit(_clip(0), TranscribeOptions(language="xx"))
    while not decoder.batches:
        time.sleep(0.005)
    return first


def _wait_for_batches(decoder: RecordingDecoder, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(decoder.batches) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(decoder.batches) >= count, f"the workers took {len(decoder.batches)} batches, not {count}"


def test_a_lone_client_never_waits_for_company():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=60)
    started = time.monotonic()
    for n in (1, 2, 3):
        assert batcher.decode([_clip(n)], TranscribeOptions())[0].text == str(n)
    assert time.monotonic() - started < 10
    assert [sizes for sizes, _ in decoder.batches] == [[1], [2], [3]]
    batcher.close()


def test_clients_that_sent_together_are_waited_for_together():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=5)
    first = _busy(batcher, decoder)
    # Three clients send while the model is busy: the next cycle expects three clips.
    queued = [batcher.submit(_clip(n), TranscribeOptions()) for n in (2, 3, 4)]
    decoder.release.set()
    assert [f.result(5).text for f in [first, *queued]] == ["0", "2", "3", "4"]
    # Now they send again, not quite at once: the batcher waits for all three instead of going with one.
    later = [batcher.submit(_clip(5), TranscribeOptions())]
    time.sleep(0.2)
    later += [batcher.submit(_clip(n), TranscribeOptions()) for n in (6, 7)]
    assert [f.result(5).text for f in later] == ["5", "6", "7"]
    assert [sizes for sizes, _ in decoder.batches] == [[0], [2, 3, 4], [5, 6, 7]]
    batcher.close()


def test_waiting_for_company_ends_at_the_deadline():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.2)
    first = _busy(batcher, decoder)
    queued = [batcher.submit(_clip(n), TranscribeOptions()) for n in (2, 3)]
    decoder.release.set()
    [f.result(5) for f in [first, *queued]]
    started = time.monotonic()
    assert batcher.decode([_clip(4)], TranscribeOptions())[0].text == "4"  # two were expected, one came
    assert 0.15 <= time.monotonic() - started < 5
    batcher.close()


def test_queued_clips_go_in_batches_of_at_most_the_maximum_in_order():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=2, max_wait_s=60)
    first = _busy(batcher, decoder)
    futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2, 3, 4)]
    started = time.monotonic()
    decoder.release.set()
    assert [f.result(30).text for f in futures] == ["1", "2", "3", "4"] and first.result(5).text == "0"
    assert time.monotonic() - started < 30, "full batches must not wait for the deadline"
    assert [sizes for sizes, _ in decoder.batches] == [[0], [1, 2], [3, 4]]
    batcher.close()


def test_different_decoding_options_never_share_a_batch():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=0.2)
    _busy(batcher, decoder)
    english, portuguese = TranscribeOptions(language="en"), TranscribeOptions(language="pt")
    futures = [batcher.submit(_clip(n), o) for n, o in [(1, english), (2, portuguese), (3, english)]]
    decoder.release.set()
    assert [f.result(5).language for f in futures] == ["en", "pt", "en"]
    assert [(sizes, o.language) for sizes, o in decoder.batches[1:]] == [([1, 3], "en"), ([2], "pt")]
    batcher.close()


def test_concurrent_requests_share_batches():
    decoder = RecordingDecoder()
    decoder.delay_s = 0.1
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
    assert len(decoder.batches) < 4 and sum(len(sizes) for sizes, _ in decoder.batches) == 4


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
    batcher = ClipBatcher(decoder, max_batch_size=1, max_wait_s=0.0)
    running = _busy(batcher, decoder)
    queued = batcher.submit(_clip(2), TranscribeOptions())
    batcher.close()
    with pytest.raises(BatcherClosed):
        queued.result(5)
    with pytest.raises(BatcherClosed):
        batcher.submit(_clip(3), TranscribeOptions())
    decoder.release.set()
    assert running.result(5).text == "0"


def test_batches_take_clips_round_robin_across_requests():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=4, max_wait_s=0.2)
    _busy(batcher, decoder)
    long_share, short_share = Share(), Share()
    long_file = [batcher.submit(_clip(100 + i), TranscribeOptions(), long_share) for i in range(6)]
    short = batcher.submit(_clip(7), TranscribeOptions(), short_share)
    decoder.release.set()
    assert short.result(5).text == "7"
    [f.result(5) for f in long_file]
    assert [sizes for sizes, _ in decoder.batches[1:]] == [[100, 7, 101, 102], [103, 104, 105]]


def test_a_request_queues_at_most_a_batch_of_clips_at_a_time():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=2, max_wait_s=0.0)
    _busy(batcher, decoder)
    done = threading.Event()
    threading.Thread(target=lambda: (batcher.decode([_clip(i + 1) for i in range(5)], TranscribeOptions()), done.set()),
                     daemon=True).start()
    deadline = time.monotonic() + 5
    while len(batcher._queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # had it queued more, they would be there by now
    assert len(batcher._queue) == 2, "the rest waits until the first clips are decoded"
    decoder.release.set()
    assert done.wait(5)
    assert sorted(n for sizes, _ in decoder.batches[1:] for n in sizes) == [1, 2, 3, 4, 5]


def test_a_failed_clip_withdraws_the_requests_other_queued_clips():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=1, max_wait_s=0.0, request_window=3)
    _busy(batcher, decoder)
    decoder.fail_with = RuntimeError("CUDA out of memory")
    failed = []
    worker = threading.Thread(target=lambda: failed.append(_raises(batcher.decode, [_clip(1), _clip(2)])), daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while len(batcher._queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(batcher._queue) == 2, "both clips are queued behind the busy worker"
    decoder.release.set()
    worker.join(5)
    assert failed == [True]
    decoder.fail_with = None
    assert batcher.submit(_clip(9), TranscribeOptions()).result(5).text == "9"
    assert [sizes for sizes, _ in decoder.batches] == [[0], [1], [9]], "clip 2 was never decoded"


def _raises(fn, *args) -> bool:
    try:
        fn(*args, TranscribeOptions())
    except RuntimeError:
        return True
    return False


def test_free_workers_share_the_waiting_clips_instead_of_one_taking_them_all():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=5, workers=2)
    # The batcher's own lock (re-entrant) held while submitting: the four clips are all waiting when the
    # workers first look, as when four clients send at once. The decoder holds each batch until both workers
    # have taken theirs, so a fast first worker cannot come back for a share of what the second one left.
    decoder.release.clear()
    with batcher._ready:
        futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2, 3, 4)]
    _wait_for_batches(decoder, 2)
    decoder.release.set()
    assert [f.result(5).text for f in futures] == ["1", "2", "3", "4"]
    assert sorted(sizes for sizes, _ in decoder.batches) == [[1, 2], [3, 4]]
    batcher.close()


def test_a_lone_free_worker_takes_a_full_batch():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=8, max_wait_s=5, workers=2)
    decoder.release.clear()
    held = batcher.submit(_clip(0), TranscribeOptions(language="xx"))  # one worker busy
    while not decoder.batches:
        time.sleep(0.005)
    with batcher._ready:
        futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2, 3, 4)]
    _wait_for_batches(decoder, 2)  # released earlier, the busy worker could come back free and take a share
    decoder.release.set()
    assert [f.result(5).text for f in futures] == ["1", "2", "3", "4"]
    assert held.result(5).text == "0"
    assert [sizes for sizes, _ in decoder.batches] == [[0], [1, 2, 3, 4]]
    batcher.close()


def test_a_short_request_behind_thirty_long_ones_is_decoded_next():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=1, max_wait_s=0.0, request_window=2)
    _busy(batcher, decoder)
    # Thirty long files, each with two clips queued and a minute of audio already decoded; then a short request.
    longs = [Share(work_s=300.0, taken_s=60.0) for _ in range(30)]
    queued = [batcher.submit(_clip(100 + i), TranscribeOptions(), share) for i, share in enumerate(longs * 2)]
    short = batcher.submit(_clip(7), TranscribeOptions(), Share(work_s=3.0))
    decoder.release.set()
    assert short.result(5).text == "7"
    [f.result(5) for f in queued]
    assert decoder.batches[1][0] == [7], "the short request goes first, not behind the sixty clips queued before it"
    # The long files then take turns, in the order they queued.
    assert [sizes[0] for sizes, _ in decoder.batches[2:]] == list(range(100, 160))
    batcher.close()


def test_a_request_is_one_share_across_its_calls():
    decoder = RecordingDecoder()
    batcher = ClipBatcher(decoder, max_batch_size=4, max_wait_s=0.0)
    share = Share(work_s=2.0)
    batcher.decode([_clip(16000)], TranscribeOptions(), share=share)  # a stream decodes clip by clip
    batcher.decode([_clip(8000), _clip(8000)], TranscribeOptions(), share=share)
    assert share.taken_s == pytest.approx(2.0) and share.remaining_s == 0.0
    batcher.close()


def test_the_queue_depth_is_reported_as_clips_queue_and_leave():
    decoder = RecordingDecoder()
    depths: list[int] = []
    batcher = ClipBatcher(decoder, max_batch_size=2, max_wait_s=60, queue_depth=depths.append)
    first = _busy(batcher, decoder)
    futures = [batcher.submit(_clip(n), TranscribeOptions()) for n in (1, 2, 3)]
    assert depths[-1] == 3 and max(depths) == 3
    decoder.release.set()
    for future in (first, *futures):
        future.result(30)
    assert depths[-1] == 0
    batcher.close()
