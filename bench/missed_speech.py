"""Where the embedded diarizer misses speech, could another detector find it? For each recording (the dev
recordings with RTTM, and a folder of simulated meetings), the reference's speech frames the diarizer's output
misses, and for each candidate detector: the share of those frames it hears, and the false alarm it would add
(frames it hears where neither the reference nor the output has speech), both as shares of the reference's speech.

Candidates: Silero tuned for far-field audio (``far_field_vad``: its speech, and its padded regions), and the
segmentation model's mean speech probability from 0.2 (below the 0.5 that makes speech regions).

    .venv/bin/python -m bench.missed_speech [--simulated-dir DIR ...]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.corpus import audio_dir
from bench.der import read_rttm
from core.audio import SAMPLE_RATE, decode_audio
from core.types import SpeakerTurn
from strategies.diarization.embedded import EmbeddedDiarizer
from strategies.diarization.embedded.far_field_vad import far_field_speech_regions
from strategies.diarization.embedded.frames import FRAME_S, frame_mask

WEAK_SEGMENTATION_SPEECH = 0.2


def speech_frames(turns: list[SpeakerTurn], n_frames: int) -> np.ndarray:
    return frame_mask([(t.start, t.end) for t in turns], n_frames)


def candidates(diarizer: EmbeddedDiarizer, audio: np.ndarray, n_frames: int) -> dict[str, np.ndarray]:
    """(n_frames,) bool: where each candidate detector hears speech."""
    regions, heard = far_field_speech_regions(audio, diarizer.settings.vad)
    segmentation = diarizer.segmented(audio)
    weak = np.zeros(n_frames, dtype=bool)
    weak[: min(n_frames, len(segmentation.speech))] = (segmentation.speech >= WEAK_SEGMENTATION_SPEECH)[:n_frames]
    return {
        "far-field Silero, speech": frame_mask(heard, n_frames),
        "far-field Silero, padded regions": frame_mask(regions, n_frames),
        f"segmentation >= {WEAK_SEGMENTATION_SPEECH}": weak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulated-dir", type=Path, action="append", default=[], help="simulated meetings")
    args = parser.parse_args(argv)
    sets = {"dev": [p for p in sorted((audio_dir() / "multi").glob("*.rttm")) if p.with_suffix(".wav").is_file()]}
    for directory in args.simulated_dir:
        sets[str(directory)] = sorted(directory.glob("meeting_*.rttm"))
    diarizer = EmbeddedDiarizer(device="cpu")
    diarizer.load()
    for name, references in sets.items():
        totals: defaultdict[str, float] = defaultdict(float)
        for rttm in references:
            audio = decode_audio(rttm.with_suffix(".wav"))
            reference = read_rttm(rttm)
            n_frames = int(np.ceil(len(audio) / SAMPLE_RATE / FRAME_S)) + 1
            truth = speech_frames(reference, n_frames)
            output = speech_frames(diarizer.diarize(audio, num_speakers=len({t.speaker for t in reference})), n_frames)
            missed = truth & ~output
            totals["speech"] += truth.sum()
            totals["missed"] += missed.sum()
            for detector, hears in candidates(diarizer, audio, n_frames).items():
                totals[f"{detector}|found"] += (missed & hears).sum()
                totals[f"{detector}|false"] += (hears & ~truth & ~output).sum()
        speech = max(totals["speech"], 1.0)
        print(f"\n{name}: {len(references)} recordings, output misses {totals['missed'] / speech:.1%} of the speech")
        print(f"{'detector':36} {'finds (of speech)':>18} {'adds false alarm':>17}")
        for detector in _names(totals):
            print(f"{detector:36} {totals[detector + '|found'] / speech:18.1%} {totals[detector + '|false'] / speech:17.1%}")
    return 0


def _names(totals: defaultdict[str, float]) -> list[str]:
    return sorted({key.split("|")[0] for key in totals if "|" in key})


if __name__ == "__main__":
    raise SystemExit(main())
