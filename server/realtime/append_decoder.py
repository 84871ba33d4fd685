"""``input_audio_buffer.append`` payloads to 16 kHz samples: base64 of 16-bit PCM at 24 kHz (``audio/pcm``)
or of 8 kHz G.711 (``audio/pcmu``, ``audio/pcma``), resampled as a continuous stream."""

from __future__ import annotations

import numpy as np

from core.errors import InvalidInputError
from core.g711 import G711_SAMPLE_RATE, decode_a_law, decode_mu_law
from core.pcm_stream import PcmToModelRate

from ..edge.data_urls import decode_base64
from .session_config import AudioFormat

PCM_RATE = 24_000
_BYTES_PER_SECOND = {"audio/pcm": 2 * PCM_RATE, "audio/pcmu": G711_SAMPLE_RATE, "audio/pcma": G711_SAMPLE_RATE}


class AppendDecoder:
    """Decodes one session's appends in its audio format; the resampler carries over from one append to the next."""

    def __init__(self, audio_format: AudioFormat) -> None:
        self.format = audio_format
        self._resampler = PcmToModelRate(PCM_RATE if audio_format == "audio/pcm" else G711_SAMPLE_RATE)

    def seconds_in(self, payload: object) -> float:
        """The audio an append's ``audio`` carries, from the length of its base64 alone (0 for a payload that is not
        a string: ``decode`` refuses it)."""
        if not isinstance(payload, str):
            return 0.0
        return len(payload) * 3 / 4 / _BYTES_PER_SECOND[self.format]

    def decode(self, payload: object) -> np.ndarray:
        """16 kHz float32 samples of one append's ``audio``; InvalidInputError for anything else."""
        if not isinstance(payload, str):
            raise InvalidInputError("'audio' must be a base64-encoded string.", input="audio")
        try:
            data = decode_base64(payload)
        except ValueError as exc:
            raise InvalidInputError(f"'audio' is not valid base64: {exc}.", input="audio") from exc
        if self.format == "audio/pcm":
            if len(data) % 2:
                raise InvalidInputError(
                    "audio/pcm is 16-bit samples: the decoded audio has an odd number of bytes.", input="audio"
                )
            samples = np.frombuffer(data, dtype="<i2")
        elif self.format == "audio/pcmu":
            samples = decode_mu_law(data)
        else:
            samples = decode_a_law(data)
        return self._resampler.convert(samples)
