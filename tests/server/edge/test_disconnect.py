"""Blocking work for a request, told when its client goes or its time is up; and the request deadline itself.
A stand-in request says when the client has gone; no model involved."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from core.errors import ErrorKind, RequestCancelled, RequestTimedOut
from server.edge import disconnect
from server.edge.disconnect import Deadline, run_while_connected


class Client:
    """The part of a Starlette request that ``run_while_connected`` reads: whether the client has gone."""

    def __init__(self) -> None:
        self.gone = threading.Event()

    async def is_disconnected(self) -> bool:
        return self.gone.is_set()


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(disconnect, "POLL_S", 0.01)


def run(client: Client, work, timeout_s: float = 30.0):
    return anyio.run(run_while_connected, client, work, timeout_s)


def test_a_deadline_counts_down_and_fails_with_a_504_naming_its_limit():
    deadline = Deadline(0.05)
    assert not deadline.passed and 0 < deadline.remaining_s <= 0.05
    time.sleep(0.06)
    assert deadline.passed and deadline.remaining_s < 0
    error = deadline.error()
    assert isinstance(error, RequestTimedOut) and error.kind is ErrorKind.TIMED_OUT
    assert (error.message, error.input, error.code) == ("The request did not finish within 0.05 seconds.", "file", "timeout")
    assert Deadline(6 * 3600).error().message == "The request did not finish within 21600 seconds."


def test_the_works_result_while_the_client_stays():
    def work(cancelled: threading.Event) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return "cancelled" if cancelled.is_set() else "done"

    assert run(Client(), work) == "done"


def test_a_client_that_goes_cancels_the_work():
    client = Client()

    def work(cancelled: threading.Event) -> str:
        client.gone.set()
        assert cancelled.wait(5)
        raise RequestCancelled("dropped", input="file")

    with pytest.raises(RequestCancelled):  # not a timeout: nobody is there to read the answer
        run(client, work)


def test_past_the_deadline_the_work_is_cancelled_and_the_request_times_out():
    def work(cancelled: threading.Event) -> str:
        assert cancelled.wait(5)
        raise RequestCancelled("dropped", input="file")

    with pytest.raises(RequestTimedOut) as error:
        run(Client(), work, timeout_s=0.05)
    assert error.value.message == "The request did not finish within 0.05 seconds." and error.value.input == "file"
    assert isinstance(error.value.__cause__, RequestCancelled)


def test_work_that_ends_past_the_deadline_without_dropping_anything_keeps_its_result():
    def work(cancelled: threading.Event) -> str:
        assert cancelled.wait(5)
        return "finished anyway"

    assert run(Client(), work, timeout_s=0.05) == "finished anyway"


def test_the_works_own_errors_come_through_unwrapped():
    def work(cancelled: threading.Event) -> str:
        raise ValueError("the work's own")

    with pytest.raises(ValueError, match="the work's own"):  # not an exception group from the task group
        run(Client(), work)
