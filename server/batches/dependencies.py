"""The jobs the routes work with (on ``app.state``'s collaborators), or a clear refusal when they are off."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from core.errors import ErrorKind, STTError
from pipeline.jobs.jobs import Jobs

from ..collaborators import bound


class JobsOff(STTError):
    kind = ErrorKind.NOT_FOUND
    code = "batches_disabled"


def get_jobs(connection: HTTPConnection) -> Jobs:
    if (jobs := bound(connection).jobs) is None:
        raise JobsOff(
            "The Files and Batch APIs are off on this server: its operator turns them on with STT_JOBS_DIR."
        )
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]
