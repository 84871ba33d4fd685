"""Diarization error rate of the embedded engine on the corpus's multi-speaker recordings.

Every ``multi/*.rttm`` with a ``.wav`` beside it is diarized twice: told the true speaker count,
and left to estimate it. Exits 1 when a target (true count given) is missed, 2 without a corpus.

    .venv/bin/python -m bench.diarization_der [--collar 0.25] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.corpus import AUDIO_DIR_ENV, audio_dir
from bench.der import diarization_error_rate, read_rttm
from core.audio import decode_audio
from strategies.diarization.base import Diarizer
from strategies.diarization.embedded import EmbeddedDiarizer

TARGETS = {"pyannote_sample": 0.25, "picovoice_falcon_test": 0.15}
"""Highest acceptable DER with the true speaker count given, by recording."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collar", type=float, default=0.0, help="seconds around reference boundaries not scored")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    references = sorted((audio_dir() / "multi").glob("*.rttm"))
    references = [r for r in references if r.with_suffix(".wav").is_file()]
    if not references:
        print(f"No multi/*.rttm with audio under {audio_dir()} (set {AUDIO_DIR_ENV}).", file=sys.stderr)
        return 2

    diarizer = EmbeddedDiarizer(device=args.device)
    started = time.perf_counter()
    diarizer.load()
    print(f"embedded engine loaded in {time.perf_counter() - started:.1f} s; collar {args.collar} s\n")
    columns = ("DER", "missed", "f.alarm", "confus.")
    header = f"{'recording':24} {'count':9} {'spk':>7} " + " ".join(f"{c:>7}" for c in columns) + f" {'time':>6}"
    print(header)
    print("-" * len(header))
    failures = []
    for rttm in references:
        failures += _score(diarizer, rttm, args.collar)
    print()
    for name in TARGETS:
        if not any(r.stem == name for r in references):
            failures.append(f"{name}: recording missing")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("All targets met: " + ", ".join(f"{name} DER <= {target:.0%}" for name, target in TARGETS.items()))
    return 0


def _score(diarizer: Diarizer, rttm: Path, collar: float) -> list[str]:
    reference = read_rttm(rttm)
    true_count = len({t.speaker for t in reference})
    audio = decode_audio(rttm.with_suffix(".wav"))
    failures = []
    for mode, num_speakers in (("true", true_count), ("estimated", None)):
        started = time.perf_counter()
        hypothesis = diarizer.diarize(audio, num_speakers=num_speakers)
        elapsed = time.perf_counter() - started
        scores = diarization_error_rate(reference, hypothesis, collar=collar)
        found = len({t.speaker for t in hypothesis})
        print(
            f"{rttm.stem:24} {mode:9} {f'{found}/{true_count}':>7} {scores['der']:7.1%} {scores['missed']:7.1%} "
            f"{scores['false_alarm']:7.1%} {scores['confusion']:7.1%} {elapsed:5.1f}s"
        )
        target = TARGETS.get(rttm.stem)
        if mode == "true" and target is not None and scores["der"] > target:
            failures.append(f"{rttm.stem}: DER {scores['der']:.1%} > {target:.0%}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
