"""The jobs the routes work with (on ``app.state``'s collaborators), or a clear refusal when they are off."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from core.errors import ErrorKind, STTError
from pipeline.jobs.jobs import Jobs

from ..collaborators import bound
from ..edge.auth import KEY_ID_SCOPE


class JobsOff(STTError):
    kind = ErrorKind.NOT_FOUND
    code = "batches_disabled"


def get_jobs(connection: HTTPConnection) -> Jobs:
    if (jobs := bound(connection).jobs) is None:
        raise JobsOff(
            "The Files and Batch APIs are off on this server: its operator turns them on with STT_JOBS_DIR."
        )
    return jobs


def get_owner(connection: HTTPConnection) -> str | None:
    """Who the request's files and batches belong to: its API key (a digest); None when the server has no keys."""
    return connection.scope.get(KEY_ID_SCOPE)


JobsDep = Annotated[Jobs, Depends(get_jobs)]
OwnerDep = Annotated[str | None, Depends(get_owner)]
