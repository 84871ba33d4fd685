"""Speakers from window embeddings: the speaker count (estimated when not given) and a speaker per window, by
k-means on unit vectors. A count asked for is a count given: no cluster is left empty."""

from __future__ import annotations

import numpy as np

from .settings import EmbeddedSettings


def cluster(
    embeddings: np.ndarray,
    durations: np.ndarray,
    num_speakers: int | None,
    min_speakers: int | None,
    max_speakers: int | None,
    settings: EmbeddedSettings,
    counted: np.ndarray | None = None,
) -> np.ndarray:
    """A speaker index per window.

    Only windows at least ``min_embed_s`` long are clustered (the encoder's embeddings of
    shorter ones are too noisy and gather in clusters of their own); the rest go to the nearest
    centroid; when they are fewer than the count asked for, all windows are. Without ``num_speakers`` the count
    is estimated within the bounds, on ``counted`` (other embeddings of the same windows) when given.
    """
    x = unit_rows(embeddings)
    fit_mask = durations >= settings.min_embed_s
    if fit_mask.sum() < max(2, num_speakers or 0, min_speakers or 0):  # too few to give the count asked for
        fit_mask = np.ones(len(x), dtype=bool)
    fit_index = np.flatnonzero(fit_mask)
    fit = x[fit_index]
    if num_speakers is not None:
        k = min(num_speakers, len(fit))
    else:
        low = min(min_speakers or 1, len(fit))
        high = max(min(max_speakers or settings.max_speakers, len(fit)), low)
        counted_fit = fit if counted is None else unit_rows(counted)[fit_index]
        k = min(max(estimate_count(counted_fit, high, settings), low), high)
    fit_labels = partition(fit, k)
    labels = np.argmax(x @ centroids(fit, fit_labels, k).T, axis=1)
    labels[fit_index] = fit_labels
    return labels


def estimate_count(fit: np.ndarray, high: int, settings: EmbeddedSettings) -> int:
    """How many speakers: average-linkage clustering of the windows (cosine distance), merging until the closest
    clusters are ``speaker_distance`` apart; clusters too small to be a speaker (``min_cluster_windows``,
    ``min_cluster_share``) are not counted. At most ``count_sample_windows`` windows, evenly spread, are read:
    linkage needs their pairwise distances."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(fit) < 2:
        return 1
    sample = fit[:: -(-len(fit) // settings.count_sample_windows)]
    tree = linkage(sample, method="average", metric="cosine")
    sizes = np.bincount(fcluster(tree, settings.speaker_distance, criterion="distance"))
    min_size = max(settings.min_cluster_windows, settings.min_cluster_share * len(sample))
    return min(max(int((sizes >= min_size).sum()), 1), high)


def partition(x: np.ndarray, k: int) -> np.ndarray:
    """k clusters of unit vectors, none empty: k-means (several seeds, fixed for repeatable output), polished on
    the sphere."""
    from sklearn.cluster import KMeans

    if k <= 1:
        return np.zeros(len(x), dtype=int)
    if k >= len(x):
        return np.arange(len(x))
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)
    return refine(x, labels, k)


def centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, dim) unit-length cluster means; an empty cluster gets a zero row."""
    sums = np.eye(k, dtype=x.dtype)[labels].T @ x
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-8)


def refine(x: np.ndarray, labels: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """A few rounds of spherical k-means, starting from ``labels``; a round that would leave a cluster empty ends
    the polish, so the k clusters stay k."""
    for _ in range(iterations):
        new = np.argmax(x @ centroids(x, labels, k).T, axis=1)
        if np.array_equal(new, labels) or len(np.unique(new)) < len(np.unique(labels)):
            break
        labels = new
    return labels


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """``embeddings`` with each row scaled to unit length."""
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
