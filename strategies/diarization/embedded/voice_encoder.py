"""The GE2E speaker encoder that resemblyzer ships: loading it, the size of its weights, and embedding windows of
the mel features in batches."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .frames import FRAME_S, Span

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

    spans = []
    for start, end in windows:
        length = min(max(int(round((end - start) / FRAME_S)), 1), len(mel))
        spans.append((min(int(round(start / FRAME_S)), len(mel) - length), length))
    by_length: dict[int, list[int]] = {}
    for i, (_, length) in enumerate(spans):
        by_length.setdefault(length, []).append(i)
    out = np.zeros((len(spans), EMBEDDING_SIZE), dtype=np.float32)
    with torch.inference_mode():
        for length, indices in by_length.items():
            for chunk in (indices[i : i + batch_size] for i in range(0, len(indices), batch_size)):
                batch = torch.from_numpy(np.stack([mel[spans[i][0] : spans[i][0] + length] for i in chunk]))
                out[chunk] = encoder(batch.to(encoder.device)).cpu().numpy()
    return out
