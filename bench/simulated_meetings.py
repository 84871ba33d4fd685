"""Simulated meetings: real utterances of different speakers in ``../shared/audio`` made into 2- to 6-speaker
conversations, with overlapped speech, room reverberation at different distances, background noise and a quiet
talker, each written as a WAV file with its RTTM reference beside it (in a temporary or bench output folder, never
in the repository).

How a meeting is made (all from one seed, so the set is the same on every run):

- Speakers: each voice of the corpus's English single-speaker recordings (``speaker_of``): the LibriSpeech readers
  (the speaker id in ``ls_*`` names), the LJ Speech reader, the LibriVox readers and the reader of the long
  LibriSpeech file. Their audio is cut into turns of 1.5-7 s at pauses, read in order (no turn repeated while
  the speaker has unread audio).
- Turns: every speaker speaks at least twice; nobody follows themself. Each next turn starts after a short gap or,
  often enough that 10-20% of the speech is overlapped, before the previous one ends (by 0.3-2 s, never more than
  half of either turn). The reference turn spans the speech of the piece (first to last frame louder than a tenth
  of its RMS), as an annotator would mark it.
- Room: one reverberation time per meeting (RT60 0.25-0.7 s); each speaker at their own distance (0.7-3.5 m), the
  impulse response a direct path (1/distance, delayed) plus an exponentially decaying noise tail whose energy
  against the direct path follows the distance (a critical distance of 1 m): far talkers sound distant.
- Levels: each speaker within +-3 dB, one quiet talker 10 dB down; pink background noise 12-20 dB below the
  speech.

A heavier set (``--heavy-overlap``): 3 to 5 speakers, 30-45% of the speech overlapped by 0.5-3 s.

    .venv/bin/python -m bench.simulated_meetings [--out DIR] [--seed 0] [--heavy-overlap]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import fftconvolve

from bench.corpus import audio_dir
from core.audio import SAMPLE_RATE, decode_audio
from core.types import SpeakerTurn

SPEAKER_COUNTS = (2, 3, 4, 5, 6)
MEETINGS_PER_COUNT = 2
MEETING_S = (35.0, 50.0)
TURN_S = (1.5, 7.0)
OVERLAP_SHARE = (0.10, 0.20)
"""Overlapped speech as a share of all speech (time with two or more speakers / time with one or more)."""
OVERLAP_S = (0.3, 2.0)
HEAVY_OVERLAP_SHARE = (0.30, 0.45)
HEAVY_OVERLAP_S = (0.5, 3.0)
HEAVY_SPEAKER_COUNTS = (3, 4, 5)
"""``--heavy-overlap``: meetings where a third or more of the speech is overlapped, as in lively far-field meetings."""
GAP_S = (0.1, 0.9)
RT60_S = (0.25, 0.7)
DISTANCE_M = (0.7, 3.5)
CRITICAL_DISTANCE_M = 1.0
SPEED_OF_SOUND = 343.0
QUIET_DB = -10.0
LEVEL_SPREAD_DB = 3.0
SNR_DB = (12.0, 20.0)
SPEECH_RMS = 0.05
FRAME = SAMPLE_RATE // 100


@dataclass(frozen=True)
class Meeting:
    name: str
    wav: Path
    rttm: Path
    speakers: int
    overlap_share: float
    duration_s: float

    def reference(self) -> list[SpeakerTurn]:
        from bench.der import read_rttm

        return read_rttm(self.rttm)


def speaker_of(path: str) -> str | None:
    """The voice of an English single-speaker recording of the manifest; None for those of unknown or several
    speakers (and the applause of the JFK excerpt)."""
    name = Path(path).name
    if not path.startswith("en/"):
        return None
    if name.startswith("ls_"):
        return "ls" + name.split("_")[2].split("-")[0]
    if name.startswith("long_ls_"):
        return "ls" + name.split("_")[3].split("-")[0]
    for prefix, voice in (
        ("ljspeech_", "ljspeech"),
        ("librivox_sense_and_sensibility", "librivox_sense"),
        ("long_librivox_shakespeare_sonnet", "librivox_sonnet"),
        ("long_lucier", "lucier"),
    ):
        if name.startswith(prefix):
            return voice
    return None


def voices(directory: Path) -> dict[str, np.ndarray]:
    """Each voice's recordings joined (16 kHz mono, each brought to the same RMS), by voice."""
    by_voice: dict[str, list[np.ndarray]] = defaultdict(list)
    for line in (directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        voice = speaker_of(entry["path"])
        if voice is None or int(entry.get("channels", 1)) != 1:
            continue
        audio = decode_audio(directory / entry["path"])
        by_voice[voice].append(audio / max(float(np.sqrt(np.mean(audio**2))), 1e-4) * SPEECH_RMS)
    return {voice: np.concatenate(parts) for voice, parts in sorted(by_voice.items())}


def pieces_of(audio: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The voice's audio cut at pauses into turns of about ``TURN_S``, each trimmed to its speech."""
    level = np.sqrt(np.mean(audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME) ** 2, axis=1))
    quiet = level < 0.1 * float(np.sqrt(np.mean(audio**2)))
    # A pause: 200 ms of quiet frames (or, where a reader pauses seldom, 50 ms); cut in its middle.
    pauses = np.convolve(quiet.astype(int), np.ones(20, dtype=int), mode="same")
    cuts = np.flatnonzero(pauses >= 20) * FRAME
    gaps = np.convolve(quiet.astype(int), np.ones(5, dtype=int), mode="same")
    short_cuts = np.flatnonzero(gaps >= 5) * FRAME
    pieces, start = [], 0
    while start < len(audio):
        target = start + int(rng.uniform(*TURN_S) * SAMPLE_RATE)
        later = cuts[cuts >= target]
        if not later.size or later[0] > target + 2 * SAMPLE_RATE:
            later = short_cuts[short_cuts >= target]
        end = int(later[0]) if later.size else len(audio)
        first, last = speech_bounds(audio[start:end])
        if last - first >= int(TURN_S[0] * SAMPLE_RATE * 0.6):
            pieces.append(audio[start + first : start + last])
        start = end + 1
    return pieces


def speech_bounds(audio: np.ndarray, relative_level: float = 0.1) -> tuple[int, int]:
    """(first, end) sample of the 10 ms frames louder than ``relative_level`` times the audio's RMS."""
    if len(audio) < FRAME:
        return 0, 0
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > relative_level * np.sqrt(np.mean(audio**2)))
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * FRAME, (int(loud[-1]) + 1) * FRAME


def impulse_response(distance_m: float, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path (1/distance, delayed by the distance) and an exponentially decaying noise tail, its energy
    against the direct path's that of a diffuse field with a critical distance of ``CRITICAL_DISTANCE_M``."""
    n = int(rt60_s * SAMPLE_RATE)
    delay = int(distance_m / SPEED_OF_SOUND * SAMPLE_RATE)
    response = np.zeros(delay + n, dtype=np.float64)
    direct = 1.0 / distance_m
    response[delay] = direct
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail = np.convolve(tail, np.ones(4) / 4, mode="same")  # walls absorb the highs
    # Diffuse energy equals the direct energy at the critical distance.
    reverberant_energy = (direct * distance_m / CRITICAL_DISTANCE_M) ** 2
    tail *= np.sqrt(reverberant_energy / max(float(np.sum(tail**2)), 1e-12))
    response[delay + 1 : delay + 1 + n - 1] += tail[1:]
    return response / (1.0 / DISTANCE_M[0])  # the nearest talker's direct path at unit gain


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, n)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def overlap_share(turns: list[SpeakerTurn], n_frames: int) -> float:
    active = np.zeros(n_frames + 1, dtype=int)
    for turn in turns:
        active[int(turn.start * 100) : int(turn.end * 100)] += 1
    speech = int((active >= 1).sum())
    return int((active >= 2).sum()) / speech if speech else 0.0


def schedule(
    names: list[str],
    pieces: dict[str, list[np.ndarray]],
    overlap_chance: float,
    rng: np.random.Generator,
    overlap_s: tuple[float, float] = OVERLAP_S,
) -> tuple[list[tuple[str, np.ndarray, int]], list[SpeakerTurn]]:
    """(speaker, piece, start sample) for every turn, and the reference turns."""
    target = int(rng.uniform(*MEETING_S) * SAMPLE_RATE)
    order = list(rng.permutation(names))
    order += [name for name in rng.permutation(names) if name != order[-1]]
    weights = rng.dirichlet(np.ones(len(names)) * 2.0)
    cursor = dict.fromkeys(names, 0)
    placed: list[tuple[str, np.ndarray, int]] = []
    turns: list[SpeakerTurn] = []
    position = 0
    index = 0
    while index < len(order) or position < target:
        if index < len(order):
            name = order[index]
        else:
            others = [n for n in names if n != placed[-1][0]]
            p = np.array([weights[names.index(n)] for n in others])
            name = str(rng.choice(others, p=p / p.sum()))
        index += 1
        piece = pieces[name][cursor[name] % len(pieces[name])]
        cursor[name] += 1
        if placed:
            previous = placed[-1][1]
            if rng.random() < overlap_chance:
                most = 0.5 * min(len(previous), len(piece)) / SAMPLE_RATE
                gap = -min(rng.uniform(*overlap_s), most)
            else:
                gap = rng.uniform(*GAP_S)
            start = max(0, placed[-1][2] + len(previous) + int(gap * SAMPLE_RATE))
        else:
            start = int(rng.uniform(0.3, 1.0) * SAMPLE_RATE)
        placed.append((name, piece, start))
        turns.append(SpeakerTurn(name, start / SAMPLE_RATE, (start + len(piece)) / SAMPLE_RATE))
        position = start + len(piece)
    return placed, turns


def meeting(
    names: list[str],
    pieces: dict[str, list[np.ndarray]],
    rng: np.random.Generator,
    overlap_range: tuple[float, float] = OVERLAP_SHARE,
    overlap_s: tuple[float, float] = OVERLAP_S,
) -> tuple[np.ndarray, list[SpeakerTurn], float]:
    """(the mixture, its reference turns, its overlap share): turns drawn until the overlap is in range."""
    chance, aim = 0.3, sum(overlap_range) / 2
    for _ in range(40):
        placed, turns = schedule(names, pieces, chance, rng, overlap_s)
        length = max(start + len(piece) for _, piece, start in placed) + SAMPLE_RATE
        share = overlap_share(turns, length // (SAMPLE_RATE // 100))
        if overlap_range[0] <= share <= overlap_range[1]:
            break
        chance = float(np.clip(chance * (aim / max(share, 0.01)) ** 0.5, 0.05, 0.9))
    else:
        raise RuntimeError(f"no schedule of {len(names)} speakers with {overlap_range} overlap")
    rt60 = rng.uniform(*RT60_S)
    quiet = names[-1]
    mixture = np.zeros(length, dtype=np.float64)
    responses = {name: impulse_response(rng.uniform(*DISTANCE_M), rt60, rng) for name in names}
    gains = {name: 10 ** ((QUIET_DB if name == quiet else rng.uniform(-1, 1) * LEVEL_SPREAD_DB) / 20) for name in names}
    for name, piece, start in placed:
        wet = fftconvolve(piece, responses[name])[: length - start] * gains[name]
        mixture[start : start + len(wet)] += wet
    speech_rms = float(np.sqrt(np.mean(mixture[np.abs(mixture) > 0] ** 2)))
    snr = rng.uniform(*SNR_DB)
    mixture += pink_noise(length, rng) * speech_rms * 10 ** (-snr / 20)
    mixture *= 0.9 / max(float(np.abs(mixture).max()), 1e-9) if np.abs(mixture).max() > 0.9 else 1.0
    return mixture.astype(np.float32), sorted(turns, key=lambda t: (t.start, t.end)), share


def write_rttm(turns: list[SpeakerTurn], file_id: str, path: Path) -> None:
    path.write_text(
        "".join(
            f"SPEAKER {file_id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in turns
        ),
        encoding="utf-8",
    )


def build_meetings(
    out_dir: Path, directory: Path | None = None, seed: int = 0, heavy_overlap: bool = False
) -> list[Meeting]:
    """The set, written into ``out_dir`` (``meeting_NN_Kspk.wav`` and ``.rttm``); ``heavy_overlap``: 3-5 speakers
    with 30-45% of the speech overlapped."""
    counts = HEAVY_SPEAKER_COUNTS if heavy_overlap else SPEAKER_COUNTS
    overlap = (HEAVY_OVERLAP_SHARE, HEAVY_OVERLAP_S) if heavy_overlap else (OVERLAP_SHARE, OVERLAP_S)
    directory = directory or audio_dir()
    rng = np.random.default_rng(seed)
    by_voice = voices(directory)
    pieces = {voice: pieces_of(audio, rng) for voice, audio in by_voice.items()}
    pieces = {voice: found for voice, found in pieces.items() if len(found) >= 2}
    if len(pieces) < max(counts):
        raise RuntimeError(f"{len(pieces)} voices with two turns or more under {directory}; need {max(counts)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    meetings = []
    for count in counts:
        for _ in range(MEETINGS_PER_COUNT):
            names = [str(name) for name in rng.choice(sorted(pieces), size=count, replace=False)]
            audio, turns, share = meeting(names, pieces, rng, *overlap)
            name = f"meeting_{len(meetings):02d}_{count}spk"
            wav, rttm = out_dir / f"{name}.wav", out_dir / f"{name}.rttm"
            soundfile.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
            write_rttm(turns, name, rttm)
            meetings.append(Meeting(name, wav, rttm, count, share, len(audio) / SAMPLE_RATE))
    return meetings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heavy-overlap", action="store_true", help="3-5 speakers, 30-45%% of the speech overlapped")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="simulated-meetings-"))
    for m in build_meetings(out, seed=args.seed, heavy_overlap=args.heavy_overlap):
        print(f"{m.wav}  {m.speakers} speakers  {m.duration_s:5.1f} s  overlap {m.overlap_share:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
