from __future__ import annotations

from dataclasses import dataclass

import pytest

from strategies.whisper.judge import THRESHOLDS, Decoding, best_of_failed, compression_ratio, decode_with_fallback

VARIED = "Ask not what your country can do for you."
LOOP = "these days, " * 30


def _decoding(text: str = VARIED, avg_logprob: float = -0.3, no_speech_prob: float = 0.01,
              temperature: float = 0.0) -> Decoding:
    return Decoding(tokens=[1, 2], text=text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob,
                    temperature=temperature)


@pytest.mark.parametrize(
    ("start", "schedule"),
    [(None, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
     (0.5, [0.5, 0.7, 0.9]), (1.0, [1.0])],
)
def test_the_temperature_rises_from_the_requested_one(start, schedule):
    assert THRESHOLDS.temperatures(start) == schedule


def test_the_thresholds_are_openais():
    assert (THRESHOLDS.compression_ratio_threshold, THRESHOLDS.log_prob_threshold) == (2.4, -1.0)
    assert THRESHOLDS.no_speech_threshold == 0.6


def test_a_likely_varied_decoding_is_kept():
    decoding = _decoding()
    assert not decoding.needs_fallback and not decoding.is_silence


def test_a_repetition_loop_or_unlikely_text_is_decoded_again():
    loop = _decoding(text=LOOP)
    assert compression_ratio(LOOP) > 2.4 and loop.needs_fallback
    assert _decoding(avg_logprob=-1.5).needs_fallback
    assert _decoding(avg_logprob=-1.2).needs_fallback


def test_unlikely_text_where_the_model_hears_no_speech_is_silence_not_a_retry():
    silence = _decoding(text="You", avg_logprob=-1.2, no_speech_prob=0.9)
    assert silence.is_silence and not silence.needs_fallback
    assert not _decoding(avg_logprob=-0.5, no_speech_prob=0.9).is_silence, "confident text is kept"


def test_where_the_model_hears_no_speech_unlikely_text_or_a_loop_are_silence_not_a_retry():
    for silence in (_decoding(avg_logprob=-1.2, no_speech_prob=0.9), _decoding(LOOP, no_speech_prob=0.9)):
        assert silence.is_silence and not silence.needs_fallback
    assert not _decoding(no_speech_prob=0.9).is_silence, "likely varied text is kept"


def test_a_loop_where_the_model_hears_no_speech_is_silence():
    """On noise, sampling at higher temperatures sooner or later lands on a confident '. . . .'."""
    loop_on_noise = _decoding(text=". " * 40, avg_logprob=-0.1, no_speech_prob=0.95)
    assert loop_on_noise.is_silence and not loop_on_noise.needs_fallback
    assert _decoding(text=". " * 40, avg_logprob=-0.1, no_speech_prob=0.1).needs_fallback, "speech: retried"


def test_when_every_temperature_fails_the_attempt_missing_the_checks_by_the_least_is_kept():
    loop = _decoding(text=LOOP, avg_logprob=-0.2, temperature=0.0)
    unsure = _decoding(avg_logprob=-1.4, temperature=0.2)
    less_unsure = _decoding(avg_logprob=-1.1, temperature=0.4)
    assert best_of_failed([loop, unsure, less_unsure]) is less_unsure, "a loop far over 2.4 misses by more"
    assert best_of_failed([loop]) is loop
    attempts = [
        _decoding(avg_logprob=-1.5, temperature=0.0),
        _decoding(LOOP, avg_logprob=-0.2, temperature=0.2),
        _decoding(avg_logprob=-1.1, temperature=0.4),
        _decoding(avg_logprob=-1.3, temperature=0.6),
    ]
    assert best_of_failed(attempts).temperature == 0.4


def _repeated(times: float) -> str:
    sentence = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country. "
    return (sentence * int(times) + sentence[: int(len(sentence) * (times % 1))]).strip()


def test_among_attempts_that_all_repeat_an_invented_repetition_is_not_kept_for_being_likelier():
    """Repeated speech (a sentence said two and a half times) compresses over 2.4 at every temperature. A sampled
    attempt that says it once more is likelier (each repetition makes the next one likelier), and is not kept."""
    said = _decoding(_repeated(2.5), avg_logprob=-0.14, temperature=0.0)
    invented = _decoding(_repeated(3.5), avg_logprob=-0.11, temperature=0.2)
    assert said.loops and invented.loops and invented.avg_logprob > said.avg_logprob
    assert best_of_failed([said, invented]) is said
    assert best_of_failed([invented, said]) is said


def test_a_likely_repetition_is_kept_over_an_attempt_that_lost_its_way():
    said = _decoding(_repeated(2.5), avg_logprob=-0.14, temperature=0.0)
    lost = _decoding("An Sunday lectures on Do-So's", avg_logprob=-4.3, temperature=1.0)
    assert not lost.loops
    assert best_of_failed([said, lost]) is said


def test_among_attempts_that_all_repeat_the_one_the_others_agree_with_is_kept():
    """The attempts of a 28 s window that says a sentence two and a half times, as tiny.en decoded it with a prompt:
    all over the ratio threshold. The beam search invented a fourth repetition (the likeliest), the last sampled
    attempt lost the words at the window's end (the least over the threshold); the rest agree on what was said."""
    said = _repeated(2.4)
    attempts = [
        _decoding(_repeated(3.4), avg_logprob=-0.08, temperature=0.0),
        _decoding(said, avg_logprob=-0.08, temperature=0.2),
        _decoding(said.replace("you, ask", "you ask"), avg_logprob=-0.09, temperature=0.4),
        _decoding(said, avg_logprob=-0.08, temperature=0.6),
        _decoding(said, avg_logprob=-0.08, temperature=0.8),
        _decoding(_repeated(2.2), avg_logprob=-0.33, temperature=1.0),
    ]
    assert all(attempt.loops for attempt in attempts)
    assert min(attempts, key=lambda a: a.miss).temperature == 1.0, "the least over the threshold lost words"
    assert best_of_failed(attempts).temperature == 0.2


def test_ties_keep_the_earliest_attempt():
    first, second = _decoding(LOOP, temperature=0.0), _decoding(LOOP, temperature=0.2)
    assert best_of_failed([first, second]) is first


def test_fallback_decodes_only_the_failed_clips_again_and_keeps_the_best_when_all_fail():
    @dataclass
    class Attempt:
        clip: int
        temperature: float
        needs_fallback: bool

    calls: list[tuple[list[int], float]] = []

    def decode(pending: list[int], temperature: float) -> list[Attempt]:
        calls.append((list(pending), temperature))
        # clip 0 passes at once, clip 1 at 0.4, clip 2 never
        return [Attempt(i, temperature, {0: False, 1: temperature < 0.4}.get(i, True)) for i in pending]

    chosen = decode_with_fallback(3, [0.0, 0.2, 0.4, 0.6], decode, best_of=lambda attempts: attempts[1])
    assert calls == [([0, 1, 2], 0.0), ([1, 2], 0.2), ([1, 2], 0.4), ([2], 0.6)]
    assert [(a.clip, a.temperature) for a in chosen] == [(0, 0.0), (1, 0.4), (2, 0.2)]
