"""Diarization error rate, speed and memory of the embedded engine.

Every ``multi/*.rttm`` with a ``.wav`` beside it is diarized twice: told the true speaker count,
and left to estimate it. Then synthetic recordings built from the English LibriSpeech utterances
(speaker id = the first field of ``ls_*`` file names): four speakers alternating with 0.3 s gaps,
two speakers overlapping by 1-2 s, and one to eight speakers for the count estimate. Finally a
long recording (``--long-minutes``, the synthetic turns repeated) gives the real-time factor and
the peak memory. Scoring: no collar, overlap counted, optimal speaker mapping. ``--detector`` diarizes with one of
the older speech detectors instead of the segmentation model (``bench.diarization_detectors``), to compare;
``--cluster-encoder campplus`` clusters CAM++ embeddings instead of GE2E's (``bench.campplus_embedder``).
``--simulated`` also scores the simulated meeting set (``bench.simulated_meetings``: 2-6 speakers, overlap,
reverberation, noise, a quiet talker), built into ``--simulated-dir`` (default: a temporary folder) or read from it
when its files are there: per meeting and pooled, told the count (each of 2..6 must come out) and estimating it.

Exits 1 when a target is missed, 2 without a corpus.

    .venv/bin/python -m bench.diarization_der [--collar 0.25] [--device cpu] [--long-minutes 30] [--detector asr]
    .venv/bin/python -m bench.diarization_der --simulated [--simulated-dir DIR] [--skip-synthetic --long-minutes 0]
    .venv/bin/python -m bench.diarization_der --cluster-encoder campplus [--cluster-stride 3] [--speaker-distance 0.5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.corpus import AUDIO_DIR_ENV, audio_dir
from bench.der import diarization_error_rate, read_rttm
from bench.diarization_detectors import DETECTORS, OlderDetectorDiarizer
from core.audio import SAMPLE_RATE, decode_audio
from core.types import SpeakerTurn
from strategies.diarization.base import Diarizer
from strategies.diarization.embedded import EmbeddedDiarizer, EmbeddedSettings

TARGETS = {"pyannote_dev00": 0.20, "pyannote_sample": 0.10, "picovoice_falcon_test": 0.05}
"""Highest acceptable DER with the true speaker count given, by recording."""
MIN_RTFX = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collar", type=float, default=0.0, help="seconds around reference boundaries not scored")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--long-minutes", type=float, default=30.0, help="length of the speed test (0: skip)")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument(
        "--detector", choices=("segmentation", *DETECTORS), default="segmentation", help="where speech is found"
    )
    parser.add_argument(
        "--cluster-encoder",
        choices=("ge2e", "campplus"),
        default="ge2e",
        help="the encoder whose embeddings are clustered (campplus: bench.campplus_embedder)",
    )
    parser.add_argument("--cluster-stride", type=int, default=3, help="campplus embeds every n-th window")
    parser.add_argument("--speaker-distance", type=float, default=None, help="the count's linkage distance")
    parser.add_argument("--simulated", action="store_true", help="also score the simulated meeting set")
    parser.add_argument("--simulated-dir", type=Path, default=None, help="where the set is (or is built)")
    args = parser.parse_args(argv)

    references = sorted((audio_dir() / "multi").glob("*.rttm"))
    references = [r for r in references if r.with_suffix(".wav").is_file()]
    if not references:
        print(f"No multi/*.rttm with audio under {audio_dir()} (set {AUDIO_DIR_ENV}).", file=sys.stderr)
        return 2

    settings = EmbeddedSettings()
    if args.speaker_distance is not None:
        settings = dataclasses.replace(settings, speaker_distance=args.speaker_distance)
    started = time.perf_counter()
    cluster_embedder = None
    if args.cluster_encoder == "campplus":
        from bench.campplus_embedder import CamPlusPlusEmbedder

        cluster_embedder = CamPlusPlusEmbedder(stride=args.cluster_stride)
        print(f"speakers clustered on CAM++ embeddings (one window in {args.cluster_stride} embedded)")
    embedded = EmbeddedDiarizer(device=args.device, settings=settings, cluster_embedder=cluster_embedder)
    embedded.load()
    print(f"embedded engine loaded in {time.perf_counter() - started:.1f} s; collar {args.collar} s\n")
    diarizer: Diarizer = embedded
    if args.detector != "segmentation":
        print(f"speech from the older {args.detector} detector\n")
        diarizer = OlderDetectorDiarizer(embedded, args.detector)
    _header()
    failures = []
    for rttm in references:
        audio = decode_audio(rttm.with_suffix(".wav"))
        failures += _score(diarizer, rttm.stem, audio, read_rttm(rttm), args.collar, TARGETS.get(rttm.stem))
    for name in TARGETS:
        if not any(r.stem == name for r in references):
            failures.append(f"{name}: recording missing")
    speakers = _speaker_utterances(audio_dir())
    if not args.skip_synthetic and len(speakers) >= 8:
        print("\nsynthetic (LibriSpeech)")
        _header()
        for name, (audio, reference) in synthetic_cases(speakers).items():
            failures += _score(diarizer, name, audio, reference, args.collar, None)
    if args.simulated:
        failures += _score_simulated(diarizer, args.simulated_dir, args.collar)
    if args.long_minutes > 0 and len(speakers) >= 4:
        failures += _speed(diarizer, speakers, args.long_minutes)
    print()
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("All targets met.")
    return 0


def _header() -> None:
    columns = ("DER", "missed", "f.alarm", "confus.")
    header = f"{'recording':24} {'count':9} {'spk':>7} " + " ".join(f"{c:>7}" for c in columns) + f" {'RTFx':>6}"
    print(header)
    print("-" * len(header))


def _score(
    diarizer: Diarizer,
    name: str,
    audio: np.ndarray,
    reference: list[SpeakerTurn],
    collar: float,
    target: float | None,
    totals: dict[str, defaultdict[str, float]] | None = None,
) -> list[str]:
    """Scores ``audio`` told the true count and estimating it; ``totals`` (by mode) adds up the seconds."""
    true_count = len({t.speaker for t in reference})
    failures = []
    for mode, num_speakers in (("true", true_count), ("estimated", None)):
        started = time.perf_counter()
        hypothesis = diarizer.diarize(audio, num_speakers=num_speakers)
        elapsed = time.perf_counter() - started
        scores = diarization_error_rate(reference, hypothesis, collar=collar)
        found = len({t.speaker for t in hypothesis})
        _row(name, mode, f"{found}/{true_count}", scores, len(audio) / SAMPLE_RATE / elapsed)
        if totals is not None:
            for key in ("missed_s", "false_alarm_s", "confusion_s", "reference_s"):
                totals[mode][key] += scores[key]
            totals[mode]["exact_count"] += found == true_count
            totals[mode]["recordings"] += 1
        if mode == "true" and target is not None and scores["der"] > target:
            failures.append(f"{name}: DER {scores['der']:.1%} > {target:.0%}")
        if mode == "true" and totals is not None and found != true_count:
            failures.append(f"{name}: {found} speakers out, {true_count} given")
        if mode == "estimated" and abs(found - true_count) > 1:
            failures.append(f"{name}: {found} speakers estimated, {true_count} true")
    return failures


def _row(name: str, mode: str, count: str, scores: dict[str, float], rtfx: float | None) -> None:
    print(
        f"{name:24} {mode:9} {count:>7} {scores['der']:7.1%} {scores['missed']:7.1%} "
        f"{scores['false_alarm']:7.1%} {scores['confusion']:7.1%} {'' if rtfx is None else f'{rtfx:6.0f}'}"
    )


def _score_simulated(diarizer: Diarizer, directory: Path | None, collar: float) -> list[str]:
    """The simulated meeting set, meeting by meeting, then pooled (seconds summed over the set)."""
    from bench.simulated_meetings import build_meetings

    directory = directory or Path(tempfile.mkdtemp(prefix="simulated-meetings-"))
    wavs = sorted(directory.glob("meeting_*.wav"))
    if not wavs or not all(w.with_suffix(".rttm").is_file() for w in wavs):
        wavs = [m.wav for m in build_meetings(directory)]
    print(f"\nsimulated meetings ({directory})")
    _header()
    totals: dict[str, defaultdict[str, float]] = {"true": defaultdict(float), "estimated": defaultdict(float)}
    failures = []
    for wav in wavs:
        reference = read_rttm(wav.with_suffix(".rttm"))
        failures += _score(diarizer, wav.stem, decode_audio(wav), reference, collar, None, totals)
    for mode, total in totals.items():
        reference_s = max(total["reference_s"], 1e-9)
        pooled = {
            "der": (total["missed_s"] + total["false_alarm_s"] + total["confusion_s"]) / reference_s,
            "missed": total["missed_s"] / reference_s,
            "false_alarm": total["false_alarm_s"] / reference_s,
            "confusion": total["confusion_s"] / reference_s,
        }
        _row("pooled", mode, f"{total['exact_count']:.0f}/{total['recordings']:.0f}", pooled, None)
    return failures


def _speaker_utterances(directory: Path) -> dict[str, list[np.ndarray]]:
    """LibriSpeech utterances by speaker (16 kHz ones only), each trimmed to at most 8 s."""
    manifest = directory / "manifest.jsonl"
    if not manifest.is_file():
        return {}
    by_speaker: dict[str, list[np.ndarray]] = defaultdict(list)
    for line in manifest.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        name = Path(entry["path"]).name
        if entry.get("lang") != "en" or not name.startswith("ls_") or entry.get("sample_rate") != SAMPLE_RATE:
            continue
        audio = decode_audio(directory / entry["path"])
        by_speaker[name.split("_")[2].split("-")[0]].append(audio[: 8 * SAMPLE_RATE])
    return dict(sorted(by_speaker.items()))


def synthetic_cases(speakers: dict[str, list[np.ndarray]]) -> dict[str, tuple[np.ndarray, list[SpeakerTurn]]]:
    """Harder recordings built from single-speaker utterances, each with its reference turns."""
    ids = list(speakers)
    cases = {}
    four = [(ids[i], speakers[ids[i]][r % len(speakers[ids[i]])]) for r in range(2) for i in range(4)]
    cases["four_alternating_0.3s"] = _join(four, [0.3] * len(four))
    two = [(ids[i % 2], speakers[ids[i % 2]][(i // 2) % len(speakers[ids[i % 2]])]) for i in range(6)]
    cases["two_overlapping_1-2s"] = _join(two, [-1.0, -1.5, -2.0, -1.0, -1.5, -2.0])
    for k in (1, 2, 4, 6, 8):
        parts = [(ids[i], speakers[ids[i]][r % len(speakers[ids[i]])]) for r in range(2) for i in range(k)]
        cases[f"count_{k}"] = _join(parts, [0.5] * len(parts))
    return cases


def _join(parts: list[tuple[str, np.ndarray]], gaps: list[float]) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """Utterances one after another; a negative gap starts the next one that much before this one ends.

    Each reference turn spans its utterance's speech, from the first to the last 10 ms frame louder than a tenth
    of the utterance's RMS: LibriSpeech utterances open and close with up to half a second of silence, which no
    annotator would mark as speech (pauses inside an utterance stay in its turn, as in meeting references)."""
    starts, position = [], 0
    for (_, audio), gap in zip(parts, gaps, strict=True):
        starts.append(position)
        position = max(0, position + len(audio) + int(gap * SAMPLE_RATE))
    out = np.zeros(max(s + len(a) for s, (_, a) in zip(starts, parts, strict=True)), dtype=np.float32)
    turns = []
    for start, (speaker, audio) in zip(starts, parts, strict=True):
        out[start : start + len(audio)] += audio / max(float(np.sqrt(np.mean(audio**2))), 1e-4) * 0.05
        first, last = _speech_bounds(audio)
        turns.append(SpeakerTurn(speaker, (start + first) / SAMPLE_RATE, (start + last) / SAMPLE_RATE))
    return out, turns


def _speech_bounds(audio: np.ndarray, frame: int = SAMPLE_RATE // 100, relative_level: float = 0.1) -> tuple[int, int]:
    """(first, end) sample of the frames louder than ``relative_level`` times the utterance's RMS."""
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > relative_level * np.sqrt(np.mean(audio**2)))
    if loud.size == 0:
        return 0, len(audio)
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def _speed(diarizer: Diarizer, speakers: dict[str, list[np.ndarray]], minutes: float) -> list[str]:
    ids = list(speakers)[:4]
    parts, position = [], 0
    while position < minutes * 60 * SAMPLE_RATE:
        for speaker in ids:
            for audio in speakers[speaker]:
                parts.append((speaker, audio))
                position += len(audio) + SAMPLE_RATE // 2
    audio, reference = _join(parts, [0.5] * len(parts))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    hypothesis = diarizer.diarize(audio)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = diarization_error_rate(reference, hypothesis)
    rtfx = len(audio) / SAMPLE_RATE / elapsed
    print(
        f"\nspeed: {len(audio) / SAMPLE_RATE / 60:.1f} min of 4 alternating speakers in {elapsed:.1f} s = "
        f"{rtfx:.0f}x real time; peak RSS {peak:.0f} MiB (before {before:.0f} MiB, audio "
        f"{audio.nbytes / 2**20:.0f} MiB); {len({t.speaker for t in hypothesis})} speakers found, DER {scores['der']:.1%}"
    )
    return [] if rtfx >= MIN_RTFX else [f"speed {rtfx:.0f}x < {MIN_RTFX:.0f}x real time"]


if __name__ == "__main__":
    sys.exit(main())
