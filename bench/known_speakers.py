"""Known speakers with the embedded diarizer: how alike its voice embeddings are for one speaker and for two, the
threshold a diarized speaker takes a reference's name from, and whether two-speaker recordings get the right names.

Voices (``corpus_voices``): the corpus's English LibriSpeech utterances (``en/ls_*``, 16 kHz ones; speaker id = the
first number of the file name), speaker 3080's ten-utterance recording cut in four, and the LJ Speech and LibriVox
readers' utterances: 37 recordings of 15 speakers, 14 of them with two or more.

1. Trials: a reference of 2, 5 or 10 s cut from the start of one utterance (as ``known_speaker_references[]``
   carries it) against each *other* utterance embedded whole (as a diarized speaker's own speech is): the same
   speaker's other utterances, and every other speaker's. Prints both similarity distributions, the equal error
   rate and its threshold, and the error rates at the diarizer's ``same_voice_similarity``.
2. Two-speaker recordings: for every pair of speakers with two utterances or more, one utterance of each back to
   back, diarized with the count estimated, then named from 2, 5 or 10 s references cut from their *other*
   utterances: once with both references and a third speaker's who does not speak (both halves named right, the
   third name unused), once with the first speaker's and the third's only (the second half keeps its generated
   label). Prints the similarities, the share named right by threshold, and the highest threshold with the most
   right.

Exits 1 when an accuracy target is missed, 2 without a corpus.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.known_speakers [--threshold 0.74] [--device cpu] [--pairs 91]

(About two minutes on one CPU core; several torch threads on a busy machine make it many times slower.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.corpus import AUDIO_DIR_ENV, audio_dir
from core.audio import SAMPLE_RATE, decode_audio
from core.types import SpeakerTurn
from pipeline.known_speakers import matched_pairs, speaker_speech
from strategies.diarization.embedded import EmbeddedDiarizer

REFERENCE_SECONDS = (2.0, 5.0, 10.0)
GAP_S = 0.5
LONG_PARTS = 4
SWEEP = np.round(np.arange(0.64, 0.845, 0.02), 2)
MIN_TRIAL_ACCURACY = 0.95
"""Share of trials (same and different speaker alike) decided right at the threshold."""
MIN_NAMING_ACCURACY = 0.9
"""Share of namings (a recording with one set of references) entirely right at the threshold."""


@dataclass(frozen=True)
class Utterance:
    speaker: str
    name: str
    audio: np.ndarray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=None, help="the diarizer's same_voice_similarity if unset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=None, help="two-speaker recordings to build (default: all)")
    args = parser.parse_args(argv)

    utterances = corpus_voices(audio_dir())
    if len({u.speaker for u in utterances}) < 3:
        print(f"No speech corpus with LibriSpeech utterances at {audio_dir()} (set {AUDIO_DIR_ENV}).", file=sys.stderr)
        return 2
    diarizer = EmbeddedDiarizer(device=args.device)
    diarizer.load()
    threshold = args.threshold if args.threshold is not None else diarizer.same_voice_similarity
    assert threshold is not None
    speakers = {u.speaker for u in utterances}
    print(f"{len(utterances)} utterances of {len(speakers)} speakers; threshold {threshold:.3f}\n")

    started = time.perf_counter()
    same, different = trials(diarizer, utterances)
    print(f"trials embedded in {time.perf_counter() - started:.0f} s\n")
    trial_accuracy = report_trials(same, different, threshold)

    started = time.perf_counter()
    naming_accuracy = report_naming(naming_cases(diarizer, utterances, args.pairs), threshold)
    print(f"\ntwo-speaker recordings in {time.perf_counter() - started:.0f} s")

    failures = []
    if trial_accuracy < MIN_TRIAL_ACCURACY:
        failures.append(f"trial accuracy {trial_accuracy:.1%} < {MIN_TRIAL_ACCURACY:.0%}")
    if naming_accuracy < MIN_NAMING_ACCURACY:
        failures.append(f"naming accuracy {naming_accuracy:.1%} < {MIN_NAMING_ACCURACY:.0%}")
    print("FAILED: " + "; ".join(failures) if failures else "All targets met.")
    return 1 if failures else 0


def corpus_voices(directory: Path) -> list[Utterance]:
    """The corpus's single-speaker English recordings whose speaker is known, by file name order: the 16 kHz
    LibriSpeech utterances (``ls_*``), the ten-utterance LibriSpeech recording of speaker 3080 cut in
    ``LONG_PARTS`` parts, and the LJ Speech and LibriVox (Sense and Sensibility) readers' utterances."""
    manifest = directory / "manifest.jsonl"
    if not manifest.is_file():
        return []
    utterances = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        name = Path(entry["path"]).name
        speaker = _speaker_of(name)
        if entry.get("lang") != "en" or speaker is None:
            continue
        if name.startswith("ls_") and entry.get("sample_rate") != SAMPLE_RATE:
            continue  # the 8 kHz copy of a speaker: another channel, left out like the diarization bench does
        audio = decode_audio(directory / entry["path"])
        if name.startswith("long_"):
            utterances += [Utterance(speaker, f"{name}#{i}", part) for i, part in enumerate(np.array_split(audio, LONG_PARTS))]
        else:
            utterances.append(Utterance(speaker, name, audio))
    return sorted(utterances, key=lambda u: u.name)


def _speaker_of(file_name: str) -> str | None:
    """``ls_to_1688-142285-0000.flac`` -> ``1688``; the LJ Speech and LibriVox readers by corpus; else None."""
    if file_name.startswith(("ls_", "long_ls_")):
        return file_name.removeprefix("long_").split("_")[2].split("-")[0]
    if file_name.startswith("ljspeech_"):
        return "LJ"
    if file_name.startswith("librivox_sense_and_sensibility_"):
        return "librivox"
    return None


def reference_clip(audio: np.ndarray, seconds: float) -> np.ndarray:
    """The first ``seconds`` of an utterance, the way a caller cuts a reference from a recording."""
    return audio[: int(seconds * SAMPLE_RATE)]


def trials(diarizer: EmbeddedDiarizer, utterances: list[Utterance]) -> tuple[dict[float, list], dict[float, list]]:
    """Similarities of references (by length) to other utterances: (same speaker, different speakers)."""
    whole = {u.name: diarizer.embed_voice(u.audio) for u in utterances}
    same: dict[float, list[float]] = defaultdict(list)
    different: dict[float, list[float]] = defaultdict(list)
    for seconds in REFERENCE_SECONDS:
        for reference in utterances:
            if reference.audio.size < seconds * SAMPLE_RATE:
                continue
            embedding = diarizer.embed_voice(reference_clip(reference.audio, seconds))
            for other in utterances:
                if other.name != reference.name:
                    scores = same if other.speaker == reference.speaker else different
                    scores[seconds].append(float(embedding @ whole[other.name]))
    return same, different


def equal_error_rate(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(EER, its threshold): the threshold where same-speaker trials below it are as common as different-speaker
    trials at or above it."""
    thresholds = np.unique(np.concatenate([same, different]))
    false_reject = np.array([(same < t).mean() for t in thresholds])
    false_accept = np.array([(different >= t).mean() for t in thresholds])
    best = int(np.argmin(np.abs(false_reject - false_accept)))
    return float((false_reject[best] + false_accept[best]) / 2), float(thresholds[best])


def report_trials(same: dict[float, list], different: dict[float, list], threshold: float) -> float:
    """Prints the distributions and error rates by reference length and pooled; returns the pooled accuracy."""
    print(f"{'reference':>9} {'trials':>6}  {'same: min   p5  median':>22}  {'different: median  p95   max':>28}"
          f"  {'EER':>5} {'at':>6}  {'FRR':>5} {'FAR':>5}")
    rows = [(f"{s:g} s", np.array(same[s]), np.array(different[s])) for s in REFERENCE_SECONDS if same[s]]
    rows.append(("all", np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows])))
    for label, s, d in rows:
        eer, at = equal_error_rate(s, d)
        frr, far = float((s < threshold).mean()), float((d >= threshold).mean())
        print(
            f"{label:>9} {len(s):>3}+{len(d):<4} {s.min():6.3f} {np.percentile(s, 5):6.3f} {np.median(s):6.3f}"
            f"          {np.median(d):6.3f} {np.percentile(d, 95):6.3f} {d.max():6.3f}  {eer:5.1%} {at:6.3f}"
            f"  {frr:5.1%} {far:5.1%}"
        )
    _, s, d = rows[-1]
    print("\nthreshold  " + " ".join(f"{t:5.2f}" for t in SWEEP))
    for label, s_, d_ in rows:
        print(f"{label:>5} FRR  " + " ".join(f"{(s_ < t).mean():5.1%}" for t in SWEEP))
    print("  all FAR  " + " ".join(f"{(d >= t).mean():5.1%}" for t in SWEEP))
    correct = int((s >= threshold).sum() + (d < threshold).sum())
    print(f"\nat {threshold:.3f}: {correct}/{len(s) + len(d)} trials right ({correct / (len(s) + len(d)):.1%})")
    return correct / (len(s) + len(d))


@dataclass(frozen=True)
class NamingCase:
    """One two-speaker recording with one set of references: what the diarizer found and how alike it all is."""

    seconds: float
    expected: tuple[str, str]
    """The names each half should get (``generated``: the half's speaker has no reference)."""
    absent: str
    named: tuple[str, ...]
    labels: list[str]
    similarities: np.ndarray
    """(diarized speakers, references)."""
    found: list[SpeakerTurn]
    turns: list[SpeakerTurn]

    def heard(self, threshold: float) -> tuple[list[str], set[str]]:
        """The name each half gets at ``threshold``, and every name given."""
        names = {self.labels[i]: self.named[j] for i, j in matched_pairs(self.similarities, threshold)}
        return [_majority_label(self.found, names, turn) for turn in self.turns], set(names.values())

    def right(self, threshold: float) -> bool:
        heard, given = self.heard(threshold)
        return tuple(heard) == self.expected and self.absent not in given


def naming_cases(diarizer: EmbeddedDiarizer, utterances: list[Utterance], limit: int | None) -> list[NamingCase]:
    """For every pair of speakers with two utterances or more (up to ``limit`` pairs): the recording of one
    utterance of each, diarized once (count estimated), with references of each length cut from other utterances:
    both speakers' and an absent third's, then the first's and the third's."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u)
    several = sorted(s for s, own in by_speaker.items() if len(own) >= 2)
    cases = []
    for a, b in list(itertools.combinations(several, 2))[:limit]:
        c = next(s for s in itertools.cycle(several[several.index(b) :] + several) if s not in (a, b))
        audio, turns = two_speaker_recording(by_speaker[a][0].audio, by_speaker[b][0].audio)
        found = diarizer.diarize(audio)
        speech = speaker_speech(found, audio)
        speakers = np.stack([diarizer.embed_voice(clip) for clip in speech.values()])
        for seconds in REFERENCE_SECONDS:
            references = {s: diarizer.embed_voice(reference_clip(by_speaker[s][1].audio, seconds)) for s in (a, b, c)}
            for named, expected in (((a, b, c), (a, b)), ((a, c), (a, "generated"))):
                similarities = speakers @ np.stack([references[s] for s in named]).T
                cases.append(NamingCase(seconds, expected, c, named, list(speech), similarities, found, turns))
    return cases


def report_naming(cases: list[NamingCase], threshold: float) -> float:
    """Prints the failures at ``threshold``, the similarities, and the share named right by threshold; returns the
    share at ``threshold``."""
    for case in cases:
        if not case.right(threshold):
            heard, _ = case.heard(threshold)
            best = ", ".join(f"{name} {case.similarities[:, j].max():.3f}" for j, name in enumerate(case.named))
            print(f"  {case.seconds:g} s references {'/'.join(case.named)}: heard {'/'.join(heard)} "
                  f"(best similarities {best})")
    recordings = len({id(case.found) for case in cases})
    two = np.mean([len({t.speaker for t in case.found}) == 2 for case in cases])
    print(f"\n{recordings} two-speaker recordings, {two:.0%} diarized as two speakers")
    print(f"{'reference':>9}  {'speaking: min   p5':>18}  {'absent: p95   max':>17}  {'named right':>14}")
    by_length = {seconds: [c for c in cases if c.seconds == seconds] for seconds in REFERENCE_SECONDS}
    for seconds, group in by_length.items():
        speaking = np.array([c.similarities[:, j].max() for c in group for j, n in enumerate(c.named) if n != c.absent])
        absent = np.array([c.similarities[:, c.named.index(c.absent)].max() for c in group])
        right = sum(c.right(threshold) for c in group)
        print(f"{seconds:>7g} s  {speaking.min():14.3f} {np.percentile(speaking, 5):6.3f}  "
              f"{np.percentile(absent, 95):10.3f} {absent.max():6.3f}  {right:>4}/{len(group):<4} {right / len(group):5.1%}")
    print("\nthreshold  " + " ".join(f"{t:5.2f}" for t in SWEEP))
    for seconds, group in [*by_length.items(), ("all", cases)]:
        label = f"{seconds:g} s" if isinstance(seconds, float) else seconds
        print(f"{label:>5} right " + " ".join(f"{np.mean([c.right(t) for c in group]):5.1%}" for t in SWEEP))
    accuracy = float(np.mean([c.right(threshold) for c in cases]))
    grid = np.round(np.arange(0.60, 0.90, 0.01), 2)
    by_threshold = {float(t): float(np.mean([c.right(t) for c in cases])) for t in grid}
    best = max(by_threshold, key=lambda t: (by_threshold[t], t))
    print(f"\nat {threshold:.3f}: {accuracy:.1%} of {len(cases)} namings right; the highest threshold with the most "
          f"right is {best:.2f} ({by_threshold[best]:.1%}), right from {min(t for t, a in by_threshold.items() if a == by_threshold[best]):.2f}")
    return accuracy


def two_speaker_recording(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """The two utterances back to back, ``GAP_S`` apart, at one speech level; with the true turns."""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    first, second = (_levelled(x) for x in (first, second))
    cut = (first.size + gap.size) / SAMPLE_RATE
    turns = [SpeakerTurn("first", 0.0, first.size / SAMPLE_RATE), SpeakerTurn("second", cut, cut + second.size / SAMPLE_RATE)]
    return np.concatenate([first, gap, second]), turns


def _levelled(audio: np.ndarray, rms: float = 0.05) -> np.ndarray:
    return (audio * (rms / max(float(np.sqrt(np.mean(audio**2))), 1e-4))).astype(np.float32)


def _majority_label(found: list[SpeakerTurn], names: dict[str, str], turn: SpeakerTurn) -> str:
    """The name (or ``generated``) of the diarized speaker covering most of a true turn."""
    cover: dict[str, float] = defaultdict(float)
    for t in found:
        cover[t.speaker] += max(0.0, min(t.end, turn.end) - max(t.start, turn.start))
    label = max(cover, key=cover.__getitem__) if cover else ""
    return names.get(label, "generated")


if __name__ == "__main__":
    sys.exit(main())
