"""The batch statuses' moves, as OpenAI's Batch API documents them."""

from __future__ import annotations

from typing import get_args

from openai.types import Batch

from pipeline.jobs import states


def test_the_statuses_are_openais():
    assert set(states.MOVES) == set(get_args(Batch.model_fields["status"].annotation))


def test_the_moves():
    assert states.can_move(states.VALIDATING, states.IN_PROGRESS)
    assert states.can_move(states.VALIDATING, states.FAILED)
    assert states.can_move(states.IN_PROGRESS, states.FINALIZING)
    assert states.can_move(states.FINALIZING, states.COMPLETED)
    assert states.can_move(states.IN_PROGRESS, states.CANCELLING)
    assert not states.can_move(states.COMPLETED, states.CANCELLING)
    assert not states.can_move(states.IN_PROGRESS, states.COMPLETED)
    assert states.TERMINAL == {states.FAILED, states.COMPLETED, states.EXPIRED, states.CANCELLED}
    assert set(states.TIMESTAMP_OF.values()) <= set(Batch.model_fields)
