"""The uploaded file's name is the client's to choose, so it is never used as a path.

BentoML names an upload's temporary file after the client's file name; a name that is very long or
odd would break that. Before BentoML sees it, the name is replaced by ``upload`` plus a short, plain
extension (the extension is only a hint: decoding probes the content).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator
from starlette.datastructures import UploadFile

_PLAIN_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def safe_upload_name(client_name: str | None) -> str:
    match = _PLAIN_EXTENSION.search(client_name or "")
    return "upload" + (match.group(0).lower() if match else "")


def _rename_upload(value: Any) -> Any:
    if isinstance(value, UploadFile):
        value.filename = safe_upload_name(value.filename)
    return value


UploadPath = Annotated[Path, BeforeValidator(_rename_upload)]
