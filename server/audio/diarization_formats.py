"""Renders who spoke when (``POST /v1/audio/diarizations``) as JSON or as RTTM, the format pyannote users score."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from core.types import SpeakerTurn

DIARIZATION_FORMATS: tuple[str, ...] = ("json", "rttm")
RTTM_MEDIA_TYPE = "text/plain; charset=utf-8"
DEFAULT_FILE_ID = "audio"
MAX_FILE_ID_CHARS = 64
_NOT_IN_FILE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def to_json(turns: list[SpeakerTurn], duration: float) -> dict[str, Any]:
    """``{"duration", "speakers", "segments": [{"speaker", "start", "end"}]}``: speakers in order of first appearance,
    segments by start (overlapped speech is overlapping segments of different speakers)."""
    return {
        "duration": round(duration, 3),
        "speakers": list(dict.fromkeys(turn.speaker for turn in turns)),
        "segments": [
            {"speaker": turn.speaker, "start": round(turn.start, 3), "end": round(turn.end, 3)} for turn in turns
        ],
    }


def to_rttm(turns: list[SpeakerTurn], file_id: str) -> str:
    """One ``SPEAKER`` line per turn, the standard ten fields (``<NA>`` in the unused ones); turns of no length are
    left out (RTTM has no use for them)."""
    lines = [
        f"SPEAKER {file_id} 1 {turn.start:.3f} {turn.end - turn.start:.3f} <NA> <NA> {_rttm_name(turn.speaker)}"
        " <NA> <NA>"
        for turn in turns
        if turn.end > turn.start
    ]
    return "".join(line + "\n" for line in lines)


def rttm_file_id(upload_name: str | None) -> str:
    """The RTTM file id for an upload: its name without folders or extension, every run of characters other than
    letters, digits, ``.``, ``_`` and ``-`` made one ``_``, at most 64 characters; ``audio`` when nothing is left."""
    stem = PurePath((upload_name or "").replace("\\", "/")).stem
    cleaned = _NOT_IN_FILE_ID.sub("_", stem).strip("._")[:MAX_FILE_ID_CHARS]
    return cleaned or DEFAULT_FILE_ID


def _rttm_name(speaker: str) -> str:
    """A speaker name as one RTTM field (a known speaker's name may hold spaces)."""
    return _NOT_IN_FILE_ID.sub("_", speaker) or "speaker"
