"""What Whisper's safeguards cost on speech: single-stream speed of the ctranslate2 engine with them and
without them, in one run, on the English short utterances of the corpus.

    .venv/bin/python -m bench.safeguards_cost [--repeats 3]

Both arms are the service's own engine (CTranslate2 tiny.en, int8) configured as the service configures it
on this machine (one worker per core, one thread each), one utterance at a time:
- ``with``: as served: beam 5 at temperature 0, a clip failing the compression-ratio or log-probability
  check decoded again at 0.2, 0.4, ... 1.0, the no-speech rule applied;
- ``without``: the same decoder with both checks switched off, so every clip is decoded once and kept.
The arms alternate within each repetition so that drift in the machine's speed hits both alike. It prints
audio seconds per second (min / median / max), the clips that fell back, and the WER of each arm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from unittest import mock

import numpy as np

from bench.corpus import audio_dir, english_short_utterances, word_error_rate
from bench.throughput import spread
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from server.settings import Settings
from strategies.base import RuntimeContext
from strategies.factory import create_engine
from strategies.whisper.judge import Decoding


def safeguards_off() -> mock._patch:
    """Neither check fires: one decoding per clip, kept whatever it says."""
    return mock.patch.multiple(Decoding, needs_fallback=property(lambda _: False), is_silence=property(lambda _: False))


def timed_pass(engine, audio: list[np.ndarray], options: TranscribeOptions) -> tuple[float, list[str], int]:
    """Seconds for one pass, the texts, and how many clips needed a temperature above the first."""
    started = time.perf_counter()
    results = [engine.transcribe_clips([clip], options)[0] for clip in audio]
    elapsed = time.perf_counter() - started
    fell_back = sum(any((s.temperature or 0) > 0 for s in r.segments) for r in results)
    return elapsed, [r.text for r in results], fell_back


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    settings = Settings()
    runtime = RuntimeContext("cpu", HubAccess(), cpu_cores=settings.cpu_cores)
    engine = create_engine(ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en"), runtime)
    engine.load()
    audio = [decode_audio(u.path) for u in utterances]
    references = [u.text for u in utterances]
    audio_s = sum(u.duration_s for u in utterances)
    options = TranscribeOptions(language="en")
    engine.transcribe_clips(audio[:1], options)  # warm-up

    arms = {"with": nullcontext, "without": safeguards_off}
    speeds: dict[str, list[float]] = {arm: [] for arm in arms}
    texts: dict[str, list[str]] = {}
    fallbacks: dict[str, int] = {}
    for _ in range(args.repeats):
        for arm, context in arms.items():
            with context():
                elapsed, texts[arm], fallbacks[arm] = timed_pass(engine, audio, options)
            speeds[arm].append(audio_s / elapsed)
    print(f"{len(utterances)} English utterances, {audio_s:.1f} s of audio; {engine.workers} workers x 1 thread; "
          f"min / median / max over {args.repeats} runs")
    for arm in arms:
        print(f"safeguards {arm:7s}: {spread(speeds[arm])} audio s/s; clips decoded again: {fallbacks[arm]}; "
              f"WER {word_error_rate(references, texts[arm]):.4f}")
    cost = 1 - statistics.median(speeds["with"]) / statistics.median(speeds["without"])
    print(f"cost of the safeguards (medians): {cost:.1%} of single-stream speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
