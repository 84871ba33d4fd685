"""How long a request waits for a model whose throughput is shared fairly, and when that wait will be short enough.

The batcher shares a model between requests by the service each has had (``batcher``): at any moment the requests
that have had the least go first, so over time each request in progress gets an equal share of the model, a short
one included. Under such sharing a request of ``work`` seconds of audio, beside requests that have ``remaining``
seconds left each, finishes later than it would alone by the time the model spends on the others meanwhile: each of
them delays it by as much of its remaining audio as it has, up to ``work`` (a request with less left finishes first;
one with more is still running when this one ends, having had as much). That delay is the request's estimated wait.
"""

from __future__ import annotations

from collections.abc import Sequence

_SEARCH_STEPS = 60


def extra_wait_s(remaining: Sequence[float], work: float, throughput: float) -> float:
    """Seconds beyond its own decoding that a request of ``work`` audio seconds waits beside ``remaining`` (audio
    seconds left per request admitted before it) on a model that decodes ``throughput`` audio seconds per second."""
    return sum(min(left, work) for left in remaining) / throughput


def wait_falls_to_s(remaining: Sequence[float], work: float, throughput: float, bound_s: float) -> float:
    """How long until ``extra_wait_s`` is at most ``bound_s``, if the requests admitted now are served fairly and no
    other arrives: 0 when it already is."""
    if extra_wait_s(remaining, work, throughput) <= bound_s:
        return 0.0
    # Each request in progress has had the same service s (or finished): find the least s that brings the wait
    # down to the bound (the wait only falls as s grows), then the time the model takes to give that much.
    low, high = 0.0, max(remaining)
    for _ in range(_SEARCH_STEPS):
        served = (low + high) / 2
        left = [max(r - served, 0.0) for r in remaining]
        if extra_wait_s(left, work, throughput) <= bound_s:
            high = served
        else:
            low = served
    return sum(min(r, high) for r in remaining) / throughput
