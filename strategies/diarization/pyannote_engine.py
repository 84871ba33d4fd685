"""Production diarization with a pyannote.audio pipeline (optional: imported only by ``load``)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .base import SAMPLE_RATE, Diarizer, SpeakerTurn, as_mono, check_speaker_bounds, relabel_in_order, release_memory

DEFAULT_MODEL = "pyannote/speaker-diarization-3.1"


class PyannoteDiarizer(Diarizer):
    """``pyannote.audio``'s ``Pipeline``; its weights are gated on the Hugging Face Hub, so they
    must be in the Hugging Face cache (or reachable with a token that accepted their terms).

    It embeds no voices (``Diarizer.embed_voice`` refuses known speakers): its pipelines carry an
    embedding model, but no threshold has been measured for it here (``bench.known_speakers`` measures
    the embedded diarizer's)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        token: str | None = None,
        cache_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.token = token
        self.cache_dir = cache_dir
        self.device = device
        self._pipeline: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # a pipeline object is not safe to call from two threads

    @property
    def is_loaded(self) -> bool:
        return self._pipeline is not None

    def load(self) -> None:
        self._loaded_pipeline()

    def memory_bytes(self) -> int:
        """The pipeline's torch modules once loaded; unknown (0) before."""
        pipeline = self._pipeline
        if pipeline is None:
            return 0
        import torch

        from ..torch_util import module_bytes

        return sum(module_bytes(m) for m in vars(pipeline).values() if isinstance(m, torch.nn.Module))

    def unload(self) -> None:
        with self._load_lock:
            self._pipeline = None
        release_memory(settle=True)

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        import torch

        check_speaker_bounds(num_speakers, min_speakers, max_speakers)
        pipeline = self._loaded_pipeline()
        audio = as_mono(audio)
        if audio.size == 0:
            return []
        counts = {"num_speakers": num_speakers, "min_speakers": min_speakers, "max_speakers": max_speakers}
        file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE}
        with self._run_lock:
            output = pipeline(file, **{name: value for name, value in counts.items() if value is not None})
        return annotation_to_turns(output)

    def _loaded_pipeline(self) -> Any:
        with self._load_lock:
            if self._pipeline is None:
                self._pipeline = self._load_pipeline()
            return self._pipeline

    def _load_pipeline(self) -> Any:
        try:
            from pyannote.audio import Pipeline
        except ImportError as exc:
            raise RuntimeError(
                f"Speaker diarization with {self.model!r} needs the 'pyannote.audio' package, which is "
                f"not installed ({exc}). Install it and put the model's weights in the Hugging Face "
                f"cache ({_hub_cache(self.cache_dir)}), or use the embedded diarization engine."
            ) from exc
        try:
            pipeline = _from_pretrained(Pipeline, self.model, self.token, self.cache_dir)
        except Exception as exc:  # hub, network and checkpoint errors all mean "weights not usable"
            raise RuntimeError(self._missing_weights(f"{type(exc).__name__}: {exc}")) from exc
        if pipeline is None:  # pyannote 3 returns None (and prints why) for gated or missing weights
            raise RuntimeError(self._missing_weights("the pipeline could not be loaded"))
        import torch

        pipeline.to(torch.device(self.device))
        return pipeline

    def _missing_weights(self, reason: str) -> str:
        return (
            f"The diarization model {self.model!r} is not available: {reason}. Its weights must be in the "
            f"Hugging Face cache ({_hub_cache(self.cache_dir)}): download them once with a token whose "
            "account accepted the model's terms (HF_TOKEN), or run with HF_HUB_OFFLINE unset."
        )


def annotation_to_turns(output: Any) -> list[SpeakerTurn]:
    """Speaker turns from a pipeline's output: a ``pyannote.core.Annotation`` (pyannote 3) or an
    object holding one in ``speaker_diarization`` (pyannote 4)."""
    annotation = getattr(output, "speaker_diarization", output)
    turns = [
        SpeakerTurn(str(label), float(segment.start), float(segment.end))
        for segment, _, label in annotation.itertracks(yield_label=True)
        if segment.end > segment.start
    ]
    return relabel_in_order(turns)


def _from_pretrained(pipeline_class: Any, model: str, token: str | None, cache_dir: str | None) -> Any:
    """pyannote 4 takes ``token=``, pyannote 3 ``use_auth_token=``."""
    try:
        return pipeline_class.from_pretrained(model, token=token, cache_dir=cache_dir)
    except TypeError as exc:
        if "token" not in str(exc):
            raise
        return pipeline_class.from_pretrained(model, use_auth_token=token, cache_dir=cache_dir)


def _hub_cache(cache_dir: str | None) -> str:
    if cache_dir:
        return str(cache_dir)
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"
