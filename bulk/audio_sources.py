"""Where an item's audio comes from: a local path or ``file://`` (read from disk), ``http(s)://`` (fetched by the
runner, within a size bound), ``s3://bucket/key`` (with the optional S3 extra, ``requirements-s3.txt``: boto3 and
its usual configuration: credentials, region and ``AWS_ENDPOINT_URL`` for S3-compatible stores such as MinIO)."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import av
import httpx

DEFAULT_MAX_AUDIO_BYTES = 100 * 2**20
"""The server's own upload limit (``STT_MAX_UPLOAD_BYTES``): a bigger file would be refused anyway."""
_CHUNK_BYTES = 1 << 20
_S3_PERMANENT_CODES = frozenset({
    "NoSuchKey", "NoSuchBucket", "404", "NotFound", "AccessDenied", "403", "InvalidBucketName", "InvalidObjectState",
    "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
})
"""S3 error codes the same request would meet again; any other (throttling, a 5xx) is tried again."""
_s3_clients: dict[tuple[float, str | None], Any] = {}
_s3_clients_lock = threading.Lock()


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
        return _fetch_s3(reference, max_bytes, timeout_s)
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


def _fetch_s3(reference: str, max_bytes: int, timeout_s: float) -> Audio:
    """``s3://bucket/key`` through boto3 and its usual configuration (credentials, region, ``AWS_ENDPOINT_URL`` for
    an S3-compatible store): the size is read first (``HEAD``), and the body no further than the bound even when
    the store's answer was wrong."""
    parsed = urlparse(reference)
    bucket, key = parsed.netloc, unquote(parsed.path.lstrip("/"))
    if not bucket or not key:
        raise AudioSourceError(f"{reference!r} is not s3://bucket/key.", permanent=True, code="invalid_audio_source")
    client = _s3_client(timeout_s)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size > max_bytes:
            raise AudioSourceError(f"{reference} is {size} bytes, over the limit of {max_bytes}.", permanent=True,
                                   code="file_too_large")
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            chunks, received = [], 0
            for chunk in body.iter_chunks(_CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise AudioSourceError(f"{reference} is over the limit of {max_bytes} bytes.", permanent=True,
                                           code="file_too_large")
                chunks.append(chunk)
        finally:
            body.close()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise AudioSourceError(f"{reference}: {code or exc}.", permanent=code in _S3_PERMANENT_CODES,
                               code="audio_fetch_failed") from None
    except BotoCoreError as exc:  # no credentials, a connection error, a timeout
        raise AudioSourceError(f"{reference}: {exc}.", permanent=False, code="audio_fetch_failed") from None
    return Audio(PurePosixPath(key).name or "audio", b"".join(chunks))


def _s3_client(timeout_s: float) -> Any:
    """One boto3 client per runner (clients are thread-safe; creating one is not)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise AudioSourceError(
            "s3:// audio needs the optional S3 extra: pip install -r requirements-s3.txt (boto3).",
            permanent=True, code="unsupported_audio_source",
        ) from None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    with _s3_clients_lock:
        if (timeout_s, endpoint) not in _s3_clients:
            config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 3})
            _s3_clients[timeout_s, endpoint] = boto3.session.Session().client("s3", config=config)
        return _s3_clients[timeout_s, endpoint]
