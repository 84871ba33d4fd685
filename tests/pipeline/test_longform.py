from __future__ import annotations

import numpy as np
import pytest

from bench.corpus import assemble, utterance_coverage, word_error_rate
from core.audio import SAMPLE_RATE
from tests.support.engine_checks import transcribe_whole
from pipeline.longform import (
    MAX_CLIP_S,
    MIN_SPAN_S,
    Clip,
    continued,
    decode_completely,
    lasting,
    merge_regions,
    plan_clips,
    stitch,
    transcribe_long,
)
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import Segment, Transcription, TranscribeOptions, Word
from core.vad import VadSettings
from strategies.base import RuntimeContext
from strategies.factory import create_engine

SR = SAMPLE_RATE


def test_regions_merge_into_clips_up_to_the_limit_and_break_at_long_pauses():
    regions = [Clip(0, 5 * SR), Clip(6 * SR, 12 * SR), Clip(13 * SR, 28 * SR), Clip(29 * SR, 35 * SR), Clip(40 * SR, 41 * SR)]
    clips = merge_regions(regions, max_samples=30 * SR, max_pause_samples=2 * SR)
    # 29..35 would make the first clip 35 s long; 40..41 follows a 5 s pause.
    assert clips == [Clip(0, 28 * SR), Clip(29 * SR, 35 * SR), Clip(40 * SR, 41 * SR)]


def test_audio_that_fits_one_clip_is_kept_whole_and_empty_audio_has_none():
    audio = np.zeros(10 * SR, dtype=np.float32)
    assert plan_clips(audio) == [Clip(0, 10 * SR)]
    assert plan_clips(np.zeros(0, dtype=np.float32)) == []


def test_a_requests_server_vad_cuts_even_short_audio_at_its_own_pauses(jfk_audio):
    """JFK's 11 s ("And so, my fellow Americans, ask not ... what your country can do for you, ask what you can do
    for your country") has pauses of about 0.3 to 1 s: kept whole by default; cut at each of them with a short
    silence_duration_ms; kept in one clip when the silence asked for is longer than any of them."""
    assert plan_clips(jfk_audio) == [Clip(0, len(jfk_audio))]
    short = plan_clips(jfk_audio, vad=VadSettings(silence_duration_ms=200, prefix_padding_ms=100))
    long = plan_clips(jfk_audio, vad=VadSettings(silence_duration_ms=1500, prefix_padding_ms=100))
    assert len(short) >= 3 and len(long) == 1
    for clips in (short, long):
        assert all(0 <= c.start < c.end <= len(jfk_audio) for c in clips)
        assert all(a.end <= b.start for a, b in zip(clips, clips[1:]))  # in order, not overlapping
    # The leading silence is left out, and padding is what the request asked for.
    assert long[0].start > 0
    padded = plan_clips(jfk_audio, vad=VadSettings(silence_duration_ms=1500, prefix_padding_ms=400))
    assert padded[0].start == max(0, long[0].start - 300 * SR // 1000)
    # A threshold no frame reaches finds no speech at all.
    assert plan_clips(jfk_audio, vad=VadSettings(threshold=1.0)) == []


def test_the_request_vad_is_not_a_decoding_option(jfk_audio):
    seen: list[TranscribeOptions] = []

    def decode(clips, options):
        seen.append(options)
        return [Transcription(text="x", language="en", duration=len(c) / SR, segments=[]) for c in clips]

    transcribe_long(jfk_audio, TranscribeOptions(vad=VadSettings(silence_duration_ms=200)), decode, batch_size=None)
    assert seen and all(options.vad is None for options in seen)  # so its clips batch with other requests'


def _segment(start: float, end: float, text: str, words: bool = False) -> Segment:
    timed = [Word(start=start, end=end, word=text)] if words else []
    return Segment(id=0, start=start, end=end, text=text, words=timed)


def test_stitch_puts_segments_on_the_files_timeline_in_order():
    clips = [Clip(2 * SR, 12 * SR), Clip(40 * SR, 50 * SR)]
    results = [
        Transcription(text=" one two", language="en", duration=10, segments=[_segment(0.5, 3.0, " one two", True)]),
        Transcription(text=" three", language="en", duration=10, segments=[_segment(1.0, 11.0, " three", True)]),
    ]
    whole = stitch(60 * SR, clips, results, TranscribeOptions())
    assert whole.text == "one two three" and whole.duration == 60 and whole.language == "en"
    assert [s.id for s in whole.segments] == [0, 1]
    first, second = whole.segments
    assert (first.start, first.end, first.seek) == (2.5, 5.0, 200)
    assert (second.start, second.end) == (41.0, 50.0)  # clamped to its clip's end
    assert (second.words[0].start, second.words[0].end) == (41.0, 50.0)


def test_times_on_the_files_timeline_are_whole_milliseconds():
    clip = Clip(SR // 10, 3 * SR)  # 0.1 + 0.2 is 0.30000000000000004 in floating point
    result = Transcription(text=" hi", language="en", duration=2.9, segments=[_segment(0.2, 0.5, " hi", True)])
    segment = stitch(3 * SR, [clip], [result], TranscribeOptions()).segments[0]
    assert (segment.start, segment.end) == (0.3, 0.6)
    assert (segment.words[0].start, segment.words[0].end) == (0.3, 0.6)


def test_spans_that_last_and_do_not_overlap_are_kept_as_they_are():
    spans = [(0.0, 0.4), (0.4, 1.0), (1.5, 2.0)]
    assert lasting(spans, 0.0, 2.0) == spans


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([(1.0, 1.3), (1.3, 1.3), (1.5, 2.0)], [(1.0, 1.3), (1.3, 1.32), (1.5, 2.0)]),  # into the gap after
        ([(1.0, 1.3), (1.5, 1.5), (1.5, 2.0)], [(1.0, 1.3), (1.48, 1.5), (1.5, 2.0)]),  # into the gap before
        ([(1.0, 1.3), (1.3, 1.3), (1.3, 2.0)], [(1.0, 1.3), (1.3, 1.32), (1.32, 2.0)]),  # the neighbour makes room
        ([(9.5, 10.0), (10.0, 10.0), (10.0, 10.0)], [(9.5, 9.96), (9.96, 9.98), (9.98, 10.0)]),  # at the end
        ([(0.0, 0.0)], [(0.0, 0.02)]),
    ],
)
def test_a_span_with_no_duration_takes_the_time_it_needs_from_beside_it(spans, expected):
    assert lasting(spans, 0.0, 10.0) == expected


def test_spans_with_no_room_share_the_time_out():
    assert lasting([(5.0, 5.0)] * 4, 5.0, 5.04) == [(5.0, 5.01), (5.01, 5.02), (5.02, 5.03), (5.03, 5.04)]


def test_text_past_the_end_of_its_clip_still_lasts_on_the_files_timeline():
    """Whisper may time text past the end of the audio (it sees 30 s); clamped to the clip's end, it lasted
    nothing: 9.89-9.89 "Okay."."""
    clip = Clip(0, int(9.89 * SR))
    segments = [_segment(8.0, 9.5, " So.", True), _segment(9.89, 10.4, " Okay.", True)]
    result = Transcription(text=" So. Okay.", language="en", duration=9.89, segments=segments)
    whole = stitch(20 * SR, [clip], [result], TranscribeOptions())
    assert [(s.start, s.end) for s in whole.segments] == [(8.0, 9.5), (9.87, 9.89)]
    words = [w for s in whole.segments for w in s.words]
    assert all(w.end - w.start >= MIN_SPAN_S - 1e-9 for w in words)
    assert all(s.end - s.start >= MIN_SPAN_S - 1e-9 for s in whole.segments)


def test_long_audio_is_decoded_in_batches_of_the_given_size_and_kept_in_order(corpus_dir, english_short):
    audio, _ = assemble(english_short, min_seconds=150)
    batches = []

    def decode(clips, options):
        batches.append(len(clips))
        return [
            Transcription(text=f"clip{len(batches)}.{i}", language=None, duration=len(c) / SR, segments=[])
            for i, c in enumerate(clips)
        ]

    result = transcribe_long(audio, TranscribeOptions(), decode, batch_size=3)
    clips = plan_clips(audio)
    assert len(clips) >= 5 and sum(batches) == len(clips)
    assert all(size == 3 for size in batches[:-1]) and 1 <= batches[-1] <= 3
    assert result.text.split() == [f"clip{b + 1}.{i}" for b, size in enumerate(batches) for i in range(size)]


def test_a_clip_whose_transcript_stops_short_is_decoded_again_after_its_text_so_far(jfk_audio):
    """Whisper's seek loop: the remainder of a clip whose transcript ends 6 s early (speech left in it) is decoded
    again, conditioned on the request's prompt and the clip's text so far; clips of one pass with equal options
    share a batch."""
    clips = [Clip(0, len(jfk_audio)), Clip(0, len(jfk_audio))]
    calls: list[tuple[int, str | None]] = []

    def decode(pieces, options):
        calls.append((len(pieces), options.initial_prompt))
        if len(calls) == 1:  # the first pass: both clips stop at 5 s
            return [Transcription(text=f"first {i}", language="en", duration=len(p) / SR,
                                  segments=[Segment(id=0, start=0.0, end=5.0, text=f"first {i}")])
                    for i, p in enumerate(pieces)]
        return [Transcription(text="rest", language="en", duration=len(p) / SR,
                              segments=[Segment(id=0, start=0.0, end=len(p) / SR, text="rest")]) for p in pieces]

    done = decode_completely(jfk_audio, clips, TranscribeOptions(initial_prompt="An address."), decode, batch_size=8)
    assert calls[0] == (2, "An address.")
    assert sorted(calls[1:]) == [(1, "An address. first 0"), (1, "An address. first 1")]
    tails = [clip for clip, result in done if result.text == "rest"]
    assert [tail.start for tail in tails] == [5 * SR, 5 * SR] and all(tail.end == len(jfk_audio) for tail in tails)


def test_a_remainders_prompt_is_the_requests_then_the_text_so_far():
    assert continued(TranscribeOptions(), " said so far ").initial_prompt == "said so far"
    assert continued(TranscribeOptions(initial_prompt="Names: Ana."), "Hi.").initial_prompt == "Names: Ana. Hi."
    assert continued(TranscribeOptions(initial_prompt="Names: Ana."), "").initial_prompt == "Names: Ana."
    assert continued(TranscribeOptions(), "").initial_prompt is None


def test_voice_activity_cuts_long_speech_into_ordered_clips_of_at_most_30s_at_pauses(corpus_dir, english_short):
    audio, _ = assemble(english_short, min_seconds=150)
    clips = plan_clips(audio)
    assert all(0 < clip.duration_s <= MAX_CLIP_S for clip in clips)
    assert all(a.end <= b.start for a, b in zip(clips, clips[1:]))
    frame = SR // 50  # 20 ms
    frame_rms = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    typical_speech = float(np.median(frame_rms[frame_rms > 0.01]))
    for clip in clips[:-1]:
        # A pause between words is a frame near the cut (within 100 ms) far quieter than speech.
        near = frame_rms[max(clip.end // frame - 5, 0) : clip.end // frame + 5]
        assert near.min() < 0.15 * typical_speech, f"cut at {clip.end / SR:.2f}s is inside speech"
    covered = sum(clip.end - clip.start for clip in clips) / len(audio)
    assert covered > 0.8  # the corpus is read speech: little of it is silence


@pytest.fixture(scope="module")
def tiny_en():
    engine = create_engine(ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en"), RuntimeContext("cpu", HubAccess()))
    engine.load()
    yield engine
    engine.unload()


def test_a_long_files_transcript_covers_every_utterance_in_order(tiny_en, corpus_dir, english_short):
    audio, references = assemble(english_short, min_seconds=240)
    result = transcribe_whole(tiny_en, audio, TranscribeOptions())
    coverage = utterance_coverage(references, result.text)
    worst = min(range(len(coverage)), key=coverage.__getitem__)
    assert coverage[worst] >= 0.6, f"utterance {worst} ({references[worst]!r}) is mostly missing: {coverage[worst]:.2f}"
    assert word_error_rate([" ".join(references)], [result.text]) < 0.2
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end > 0.95 * len(audio) / SR - 2
    assert result.duration == pytest.approx(len(audio) / SR)


def test_coverage_notices_a_missing_or_misplaced_utterance():
    references = ["the cat sat", "on the mat", "in the sun"]
    assert utterance_coverage(references, "the cat sat on the mat in the sun") == [1.0, 1.0, 1.0]
    assert utterance_coverage(references, "the cat sat in the sun")[1] == 0.0
    moved = utterance_coverage(references, "in the sun the cat sat on the mat")
    assert min(moved) < 0.5
