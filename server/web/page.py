"""The try-it page: ``GET /`` serves one static page (``static/``: HTML, CSS and plain JavaScript, no build
step, nothing fetched from elsewhere) that calls the ``/v1`` routes from the browser.

Mounted on the service at ``/`` (``@bentoml.asgi_app(app, path="/")``). BentoML mounts apps ahead of its own
index route, so ``/`` is this page; BentoML's Swagger page, which it serves at ``/`` otherwise, is served here at
``/docs`` (it loads ``./docs.json`` and ``./static_content/``, which BentoML keeps serving where they were).

The page and its assets are public (``is_public``): static files with nothing secret in them, so that a browser
can load the page and ask for the API key that the ``/v1`` calls it makes need. So are BentoML's docs page, the
OpenAPI description it shows (``/docs.json``, BentoML's) and its static files, so that ``/docs`` opens in a browser
when keys are set; the API calls made from it still need a key.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from core.languages import LANGUAGES

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/ui"
PAGE_PATHS = frozenset({"/", "/index.html"})
DOCS_PATH = "/docs"
DOCS_PATHS = frozenset({DOCS_PATH, "/docs.json"})
DOCS_ASSET_FOLDERS = ("/static_content/", "/assets/")
"""Where BentoML serves its docs page's files: Swagger UI's, or its newer UI's."""

# Only this origin's own files and API: no CDN, no inline script. Microphone audio plays back from blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'; "
    "frame-ancestors 'self'"
)
# Revalidated on every load (cheap, with ETags): a server upgrade never leaves an old app.js beside a new page.
PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def is_public(path: str) -> bool:
    """The page, BentoML's docs page and their static files, which need no API key (the API calls they make do).
    A path that climbs out of its folder (``..``) is never public, whatever it starts with."""
    if ".." in path.split("/"):
        return False
    folders = (ASSETS_PATH + "/", *DOCS_ASSET_FOLDERS)
    return path in PAGE_PATHS or path in DOCS_PATHS or path.startswith(folders)


async def _page(_: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


async def _languages(_: Request) -> Response:
    """The language codes Whisper knows, with their English names, for the page's language picker."""
    return JSONResponse({code: name for code, name in LANGUAGES.items()}, headers=PAGE_HEADERS)


def _bentoml_docs_page() -> Path | None:
    """The page BentoML serves at ``/`` when no app takes it (its Swagger UI), as BentoML chooses it."""
    try:
        import _bentoml_impl.server as bentoml_server
        from bentoml._internal.configuration.containers import BentoMLContainer

        name = "main-ui.html" if BentoMLContainer.new_index else "main-openapi.html"
    except (ImportError, AttributeError):
        return None
    page = Path(bentoml_server.__file__).parent / name
    return page if page.is_file() else None


async def _docs(_: Request) -> Response:
    page = _bentoml_docs_page()
    if page is None:
        return PlainTextResponse("BentoML's API docs page is not available in this installation.", status_code=404)
    return FileResponse(page, media_type="text/html; charset=utf-8")


class _Assets(StaticFiles):
    """The page's static files, with the page's caching and no content sniffing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


app = Starlette(
    routes=[
        Route("/", _page, methods=["GET", "HEAD"]),
        Route("/index.html", _page, methods=["GET", "HEAD"]),
        Route(DOCS_PATH, _docs, methods=["GET", "HEAD"]),
        Route(f"{ASSETS_PATH}/languages.json", _languages, methods=["GET", "HEAD"]),
        Mount(ASSETS_PATH, _Assets(directory=STATIC_DIR), name="web-page-assets"),
    ]
)
