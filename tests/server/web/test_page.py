"""The web page's files over plain HTTP, in process: what ``GET /`` serves, that it fetches nothing from
elsewhere, BentoML's API docs at ``/docs``, and which paths need no API key."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from server.edge.auth import ApiKeyMiddleware
from server.web.page import ASSETS_PATH, STATIC_DIR, app, is_public

KEY = "sk-page"
# The hooks the browser tests and users' own scripts rely on.
TEST_IDS = ("model", "file", "submit", "transcript", "segments", "record", "live")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(app)


def test_the_page_has_its_hooks_and_a_strict_content_policy(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    for testid in TEST_IDS:
        assert f'data-testid="{testid}"' in response.text, testid
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["cache-control"] == "no-cache"


def test_every_file_the_page_names_is_served(client):
    page = client.get("/").text
    assets = re.findall(r'(?:src|href)="(ui/[^"]+)"', page)
    assert {"ui/app.js", "ui/style.css", "ui/favicon.svg"} <= set(assets)
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for asset in assets:
        response = client.get(f"/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(types[asset[asset.rindex("."):]]), asset
        assert response.headers["x-content-type-options"] == "nosniff"
    # The live-caption worklet, which app.js loads by URL.
    assert 'addModule("ui/pcm-capture.js")' in client.get("/ui/app.js").text
    assert client.get("/ui/pcm-capture.js").status_code == 200


def test_nothing_is_fetched_from_elsewhere():
    """No CDN, no font or script from another origin: the page works offline, in the Bento as it is."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}/", text), path.name
        assert "@import" not in text and "import(" not in text, path.name


def test_languages_for_the_picker(client):
    languages = client.get(f"{ASSETS_PATH}/languages.json").json()
    assert languages["en"] == "english" and languages["pt"] == "portuguese" and len(languages) > 90


def test_bentoml_api_docs_at_docs(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
    # BentoML's page loads its spec and assets relative to itself; BentoML serves both at the root.
    assert "./docs.json" in response.text or "./static_content/" in response.text or "./assets/" in response.text


def test_no_files_outside_the_static_folder(client):
    for path in ("/ui/../page.py", "/ui/%2e%2e/page.py", "/ui/..%2fpage.py", "/ui/missing.js"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    ("path", "public"),
    [("/", True), ("/index.html", True), ("/ui/app.js", True), ("/ui/languages.json", True), ("/docs", True),
     ("/docs.json", True), ("/static_content/swagger-ui.css", True), ("/assets/style.css", True),
     ("/v1/models", False), ("/uix/app.js", False), ("/transcribe", False), ("/v1/openapi.json", False),
     ("/docs/", False), ("/static_content/../v1/models", False), ("/ui/../transcribe", False), ("/metrics", False)],
)
def test_which_paths_are_public(path, public):
    assert is_public(path) is public


def test_the_page_loads_without_a_key_and_its_api_calls_need_one():
    async def models(_):
        return JSONResponse({"data": []})

    service = Starlette(routes=[Route("/v1/models", models), Mount("/", app)])
    client = TestClient(ApiKeyMiddleware(service, keys=[KEY]))
    assert client.get("/").status_code == 200
    assert client.get("/ui/app.js").status_code == 200
    assert client.get("/v1/models").status_code == 401
    assert client.get("/docs").status_code == 200  # BentoML's docs page opens in a browser too
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
