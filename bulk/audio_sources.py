"""Where an item's audio comes from: a local path or ``file://`` (read from disk), ``http(s)://`` (fetched by the
runner, within a size bound), ``s3://`` (not built: it would need the optional boto3 extra)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import av
import httpx

DEFAULT_MAX_AUDIO_BYTES = 100 * 2**20
"""The server's own upload limit (``STT_MAX_UPLOAD_BYTES``): a bigger file would be refused anyway."""


class AudioSourceError(Exception):
    """The audio could not be had. ``permanent``: it never will (no such file, a 404, too big, a scheme this
    runner cannot read); otherwise the next try may succeed (a connection error, a 5xx)."""

    def __init__(self, message: str, permanent: bool, code: str) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code

    def body(self) -> dict[str, object]:
        return {"error": {"message": str(self), "type": "invalid_request_error", "param": "audio", "code": self.code}}


@dataclass(frozen=True)
class Audio:
    """The bytes of one recording and a file name for the upload."""

    name: str
    data: bytes


def load_audio(reference: str, max_bytes: int = DEFAULT_MAX_AUDIO_BYTES, timeout_s: float = 60.0) -> Audio:
    """The bytes ``reference`` names (at most ``max_bytes``)."""
    scheme = urlparse(reference).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch(reference, max_bytes, timeout_s)
    if scheme == "s3":
        raise AudioSourceError(
            "s3:// audio needs the optional S3 extra (boto3), which this runner does not have: fetch the objects to "
            "a local folder or serve them over https (a presigned URL) instead.",
            permanent=True, code="unsupported_audio_source",
        )
    if scheme == "file":
        path = Path(unquote(urlparse(reference).path))
    elif scheme == "" or len(scheme) == 1:  # a path (a drive letter, C:\..., parses as a one-letter scheme)
        path = Path(reference)
    else:
        raise AudioSourceError(f"Unsupported audio reference scheme {scheme!r}.", permanent=True,
                               code="unsupported_audio_source")
    return _read(path, max_bytes)


def duration_s(audio: Audio) -> float:
    """The duration the container declares, 0.0 when it declares none (for the progress bar only)."""
    try:
        with av.open(io.BytesIO(audio.data), metadata_errors="ignore") as container:
            return max(0.0, (container.duration or 0) / av.time_base)
    except (av.FFmpegError, ValueError, UnicodeDecodeError):
        return 0.0


def _read(path: Path, max_bytes: int) -> Audio:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise AudioSourceError(f"{path} is {size} bytes, over the limit of {max_bytes}.", permanent=True,
                                   code="file_too_large")
        return Audio(path.name, path.read_bytes())
    except FileNotFoundError:
        raise AudioSourceError(f"No such audio file: {path}.", permanent=True, code="audio_not_found") from None
    except IsADirectoryError:
        raise AudioSourceError(f"{path} is a folder, not an audio file.", permanent=True,
                               code="audio_not_found") from None
    except PermissionError as exc:
        raise AudioSourceError(f"Cannot read {path}: {exc}.", permanent=True, code="audio_not_readable") from None


def _fetch(url: str, max_bytes: int, timeout_s: float) -> Audio:
    name = Path(urlparse(url).path).name or "audio"
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code >= 400:
                permanent = response.status_code < 500 and response.status_code not in (408, 429)
                raise AudioSourceError(f"GET {url} answered {response.status_code}.", permanent=permanent,
                                       code="audio_fetch_failed")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise AudioSourceError(f"{url} is {declared} bytes, over the limit of {max_bytes}.", permanent=True,
                                       code="file_too_large")
            chunks, received = [], 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise AudioSourceError(f"{url} is over the limit of {max_bytes} bytes.", permanent=True,
                                           code="file_too_large")
                chunks.append(chunk)
            return Audio(name, b"".join(chunks))
    except httpx.HTTPError as exc:
        raise AudioSourceError(f"GET {url} failed: {exc!r}.", permanent=False, code="audio_fetch_failed") from None
