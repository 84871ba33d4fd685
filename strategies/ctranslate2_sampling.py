"""Whisper's sampled decoding on a CTranslate2 model, drawn here so that it is reproducible.

CTranslate2 samples with one random generator per worker thread, seeded once, when the thread first draws
(``static thread_local std::mt19937`` in its src/random.cc): ``set_random_seed`` does not reach a generator that
has drawn, and a clip's draws depend on what its thread drew before and on the other clips of its batch. So the
engine draws the tokens itself, from the scores CTranslate2 computes: ``generate(return_logits_vocab=True)`` gives
each step's logits after Whisper's token rules (suppressed tokens, timestamp rules), the logits CTranslate2's own
sampler draws from.

Each round decodes every unfinished hypothesis greedily after the tokens it has drawn so far (a forced prefix),
with the logits of every step. Along the greedy tokens the hypothesis draws its own token at each step: the inverse
of the cumulative softmax(logits / temperature) at a uniform number of its own stream. Where the draw is the greedy
token it goes on; where it is another, it keeps it, and the next round decodes from there. Every drawn token is a
sample of softmax(logits / temperature) at its step, as CTranslate2 samples it; the uniform numbers depend only on
the clip's seed, the temperature, the hypothesis and the position, not on the batch or on the rounds.

A round decodes the drawn tokens again (as a forced prefix) before it goes further, so the rounds are bounded:
after ``MAX_ROUNDS`` a hypothesis still unfinished keeps the greedy continuation of its last round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ctranslate2
import numpy as np

from .whisper.seeding import temperature_seed

MAX_ROUNDS = 12
"""Rounds of decoding per temperature: each one goes on from the next token that differs from the greedy one."""
LOOKAHEAD = 48
"""Tokens a round decodes past the longest forced prefix (the first round: as far as the model goes). Sampled at a
high temperature, a hypothesis leaves the greedy path every few tokens: decoding much further is wasted."""


@dataclass(frozen=True)
class Sample:
    """One clip's sampled decoding: the best of its hypotheses."""

    tokens: list[int]
    """Text and timestamp tokens, end-of-text excluded."""
    logprob_sum: float
    """The log-probabilities (at temperature 1, after the token rules) of the tokens and of end-of-text when the
    decoding reached it."""
    finished: bool
    """Whether the decoding ended with end-of-text (not at the length limit)."""
    no_speech_prob: float

    @property
    def avg_logprob(self) -> float:
        """Whisper's average log-probability: end-of-text counts as a token when the decoding reached it."""
        return self.logprob_sum / max(len(self.tokens) + (1 if self.finished else 0), 1)


@dataclass
class _Hypothesis:
    clip: int
    prompt: list[int]
    uniforms: np.ndarray
    tokens: list[int]
    logprob_sum: float = 0.0
    finished: bool = False
    ended: bool = False
    """Nothing more to decode: end-of-text drawn, the length limit reached, or the rounds spent."""
    no_speech_prob: float = 0.0


def sample(
    model: ctranslate2.models.Whisper,
    encoder_output: ctranslate2.StorageView,
    prompts: Sequence[list[int]],
    temperature: float,
    seeds: Sequence[int],
    hypotheses: int,
    eot: int,
    max_length: int,
    **generate_options: Any,
) -> list[Sample]:
    """Each clip of the batch (``encoder_output`` and ``prompts``, one per clip) sampled ``hypotheses`` times at
    ``temperature``, hypothesis ``h`` of a clip drawing from ``temperature_seed(seed, temperature)``'s stream ``h``;
    per clip the hypothesis with the highest log-probability per token, as CTranslate2 ranks its samples.
    ``max_length`` is ``generate``'s (tokens decoded: at most half of it, and what the prompt leaves of it);
    ``generate_options`` are the engine's other options (suppressed tokens)."""
    start_step = len(prompts[0]) - 1  # what generate runs before its start token
    limit = min(max_length // 2, max_length - start_step)
    pool = [
        _Hypothesis(
            clip=clip,
            prompt=list(prompt),
            uniforms=np.random.default_rng([temperature_seed(seed, temperature), h]).random(limit + 1),
            tokens=[],
        )
        for clip, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True))
        for h in range(hypotheses)
    ]
    states = _host(encoder_output)
    for round_index in range(MAX_ROUNDS + 1):
        active = [hypothesis for hypothesis in pool if not hypothesis.ended]
        if not active:
            break
        last = round_index == MAX_ROUNDS
        longest = max(len(h.tokens) for h in active)
        length = limit if round_index == 0 or last else min(limit, longest + LOOKAHEAD)
        rows = np.ascontiguousarray(states[[h.clip for h in active]])  # alive while generate reads it
        results = model.generate(
            ctranslate2.StorageView.from_array(rows),
            [h.prompt + h.tokens for h in active],
            beam_size=1,
            max_length=min(max_length, max(2 * length, length + start_step)),
            return_logits_vocab=True,
            return_no_speech_prob=round_index == 0,
            **generate_options,
        )
        for hypothesis, result in zip(active, results, strict=True):
            if round_index == 0:
                hypothesis.no_speech_prob = result.no_speech_prob
            _follow(hypothesis, result.sequences_ids[0], result.logits[0], temperature, eot, limit, last)
    return [_best([h for h in pool if h.clip == clip]) for clip in range(len(prompts))]


def _follow(
    hypothesis: _Hypothesis, greedy: list[int], logits: list[Any], temperature: float, eot: int, limit: int, last: bool
) -> None:
    """Draw along the round's greedy tokens from where the hypothesis stands, until a draw leaves them (or, in the
    last round, keep them), end-of-text or the length limit."""
    for step in range(len(hypothesis.tokens), len(logits)):
        scores = np.asarray(_host(logits[step]), dtype=np.float64)
        greedy_token = greedy[step] if step < len(greedy) else eot
        token = greedy_token if last else _draw(scores, temperature, hypothesis.uniforms[step])
        hypothesis.logprob_sum += float(scores[token] - _logsumexp(scores))
        if token == eot:
            hypothesis.finished = hypothesis.ended = True
            return
        hypothesis.tokens.append(token)
        if len(hypothesis.tokens) >= limit:
            hypothesis.ended = True
            return
        if token != greedy_token:
            return
    if last:
        hypothesis.ended = True


def _draw(scores: np.ndarray, temperature: float, uniform: float) -> int:
    """The token at which the cumulative softmax(scores / temperature) passes ``uniform`` (suppressed tokens, at
    the lowest float, have no weight)."""
    weights = np.exp((scores - scores.max()) / temperature)
    cumulative = np.cumsum(weights)
    return int(min(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"), len(scores) - 1))


def _logsumexp(scores: np.ndarray) -> float:
    top = scores.max()
    return float(top + np.log(np.exp(scores - top).sum()))


def _best(hypotheses: list[_Hypothesis]) -> Sample:
    best = max(hypotheses, key=lambda h: h.logprob_sum / max(len(h.tokens), 1))  # the first on a tie
    return Sample(best.tokens, best.logprob_sum, best.finished, best.no_speech_prob)


def _host(storage: Any) -> Any:
    """A CTranslate2 array on the CPU, as numpy."""
    if getattr(storage, "device", "cpu") != "cpu":
        storage = storage.to_device(ctranslate2.Device.cpu)
    return np.asarray(storage)
