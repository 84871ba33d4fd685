"""The GE2E speaker encoder that resemblyzer ships: loading it, the size of its weights, and embedding windows of
the mel features in batches."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .frames import Span, window_batches

EMBEDDING_SIZE = 256


def import_voice_encoder() -> type:
    """resemblyzer's ``VoiceEncoder`` class (an error that says what to install when it is missing)."""
    try:
        with warnings.catch_warnings():
            # resemblyzer's own imports (webrtcvad's pkg_resources, scipy.ndimage.morphology) warn on import.
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise RuntimeError(
            "The embedded diarizer needs the 'resemblyzer' package (and setuptools<81, whose "
            f"pkg_resources webrtcvad imports): {exc}"
        ) from exc
    return VoiceEncoder


def weights_file_bytes() -> int:
    """The size of the encoder's weights file; 0 when resemblyzer is not installed."""
    spec = importlib.util.find_spec("resemblyzer")
    weights = Path(spec.origin).parent / "pretrained.pt" if spec and spec.origin else None
    return weights.stat().st_size if weights is not None and weights.is_file() else 0


def embed(encoder: Any, mel: np.ndarray, windows: list[Span], batch_size: int) -> np.ndarray:
    """(windows, 256) unit-length embeddings; windows of one length are batched together."""
    import torch

    out = np.zeros((len(windows), EMBEDDING_SIZE), dtype=np.float32)
    with torch.inference_mode():
        for chunk, batch in window_batches(mel, windows, batch_size):
            out[chunk] = encoder(torch.from_numpy(batch).to(encoder.device)).cpu().numpy()
    return out
