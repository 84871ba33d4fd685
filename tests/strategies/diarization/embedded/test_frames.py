"""The 10 ms frame grid: the batches of window features every speaker encoder reads."""

from __future__ import annotations

import numpy as np

from strategies.diarization.embedded.frames import window_batches


def test_windows_of_one_length_are_batched_together_in_slices_of_the_features():
    features = np.arange(300, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)  # frame i holds i
    windows = [(0.0, 1.0), (0.5, 0.8), (1.0, 2.0), (2.5, 3.5)]  # the last runs past the 3 s of features
    batches = list(window_batches(features, windows, batch_size=2))
    assert [(chunk, batch.shape) for chunk, batch in batches] == [
        ([0, 2], (2, 100, 2)), ([3], (1, 100, 2)), ([1], (1, 30, 2))
    ]
    assert batches[0][1][1, 0, 0] == 100  # window 2 starts at frame 100
    assert batches[1][1][0, 0, 0] == 200  # moved back to end at the last frame
    assert batches[2][1][0, 0, 0] == 50
