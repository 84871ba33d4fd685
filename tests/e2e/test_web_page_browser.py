"""The web page at ``/`` in a real browser: Debian's headless Chromium, driven by Selenium, against a real
``bentoml serve`` that requires an API key (so every test also goes through the page's key handling).

Microphone tests feed real speech through Chromium's fake capture device. The tests skip, saying why, without
Selenium, Chromium or chromedriver (``apt-get install chromium chromium-driver``) or the speech corpus.
Set ``STT_WEB_SCREENSHOT=<path.png>`` to save a screenshot of the page with a diarized transcript.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.corpus import normalize
from bench.server import RunningServer, running_server
from core.audio import SAMPLE_RATE, decode_audio
from tests.support.audio import JFK_PHRASE

KEY = "sk-web-page-e2e"
MULTI_SPEAKER = "multi/pyannote_sample.wav"  # a 30 s, two-party phone call
SCREENSHOT_ENV = "STT_WEB_SCREENSHOT"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
KEYLESS_401 = "v1/models - Failed to load resource: the server responded with a status of 401"
WAIT_S = 120


def _browser_binaries() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="Selenium is not installed (pip install -r requirements-dev.txt)")
    chromium = os.environ.get("STT_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    driver = os.environ.get("STT_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found)
        install = "apt-get install chromium chromium-driver, or set STT_CHROMIUM and STT_CHROMEDRIVER"
        pytest.skip(f"{missing} not found ({install})")
    return chromium, driver


@pytest.fixture(scope="module")
def binaries() -> tuple[str, str]:
    return _browser_binaries()


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory, jfk_path: Path) -> Path:
    """The JFK excerpt as 16-bit PCM WAV, which Chromium's fake capture device reads (in a loop), with 1.5 s of
    silence after it so that each pass ends a live turn."""
    if not jfk_path.is_file():
        pytest.skip(f"speech file not found: {jfk_path}")
    audio = np.concatenate([decode_audio(jfk_path), np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)])
    path = tmp_path_factory.mktemp("fake-mic") / "jfk.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def page_server(corpus_dir) -> Iterator[RunningServer]:
    with running_server({"STT_API_KEYS": KEY}) as running:
        yield running


class Page:
    """One browser tab on the page, with helpers in the page's own terms (its data-testid hooks)."""

    def __init__(self, driver: Any, url: str, downloads: Path) -> None:
        self.driver = driver
        self.url = url
        self.downloads = downloads

    def open(self, key: str | None = KEY) -> Page:
        if key is not None:  # as if given earlier in this tab: in its session storage before the page's script runs
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
                "source": f"sessionStorage.setItem('stt.apiKey', {json.dumps(key)})"
            })
        self.driver.get(self.url + "/")
        if key is not None:
            self.wait_for(self.models, "the model list")
        return self

    def find(self, testid: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; error box: {self.error_text()!r}")

    def model_options(self) -> list[tuple[str, str]]:
        """(value, label) of each option of the model picker, read at once (the page replaces them)."""
        return [tuple(o) for o in self.driver.execute_script(
            """return [...document.querySelectorAll('[data-testid="model"] option')].map(o => [o.value, o.text])"""
        )]

    def models(self) -> list[str]:
        return [value for value, _ in self.model_options() if value]

    def error_text(self) -> str:
        error = self.find("error")
        return error.text if error.is_displayed() else ""

    def choose_file(self, path: Path) -> None:
        self.find("file").send_keys(str(path))
        self.wait_for(lambda: path.name in self.find("file-name").text, "the chosen file's name")

    def submit(self) -> None:
        self.wait_for(lambda: self.find("submit").is_enabled(), "the submit button")
        self.find("submit").click()

    def wait_until_idle(self) -> None:
        self.wait_for(lambda: not self.find("status").is_displayed() and self.find("submit").is_enabled(), "the answer")

    def transcribe(self, path: Path) -> str:
        self.choose_file(path)
        self.submit()
        self.wait_until_idle()
        assert self.error_text() == ""
        return self.find("transcript").text

    def segments(self) -> list[dict[str, Any]]:
        return self.driver.execute_script(
            """return [...document.querySelectorAll('[data-testid="segments"] button.segment')].map(b => ({
                start: b.dataset.start === undefined ? null : Number(b.dataset.start),
                end: b.dataset.end === undefined ? null : Number(b.dataset.end),
                time: (b.querySelector('[data-testid="segment-time"]') || {}).textContent || null,
                speaker: b.dataset.speaker || null,
                colour: getComputedStyle(b).borderLeftColor,
                text: b.querySelector('.text').textContent.trim(),
                words: b.querySelectorAll('.word').length}))"""
        )

    def download(self, fmt: str) -> str:
        """Click a download link and read the file the browser saved."""
        link = self.find(f"download-{fmt}")
        name = link.get_attribute("download")
        target = self.downloads / name
        target.unlink(missing_ok=True)
        link.click()
        self.wait_for(lambda: target.is_file() and target.stat().st_size > 0, f"the {fmt} download", 20)
        return target.read_text(encoding="utf-8")

    def console_errors(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """SEVERE browser-log entries (JavaScript errors, console.error, failed loads) but the ``allowed`` ones."""
        entries = self.driver.get_log("browser")
        errors = [e["message"] for e in entries if e["level"] == "SEVERE"]
        return [message for message in errors if not any(a in message for a in allowed)]


@pytest.fixture
def page(binaries, speech_wav, page_server, tmp_path) -> Iterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_wav}", "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking", "--no-first-run", "--disable-extensions",
    ):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield Page(driver, page_server.url, downloads)
    finally:
        driver.quit()


def _words(text: str) -> str:
    return normalize(text)


# ------------------------------------------------------------------------------------------------ tests


def test_the_page_asks_for_the_key_and_works_once_given(page: Page, jfk_path):
    page.open(key=None)
    key_field = page.find("api-key")
    page.wait_for(lambda: key_field.is_displayed(), "the API key field")
    assert "API key" in page.error_text()
    assert page.models() == []
    key_field.send_keys("sk-wrong")
    page.find("api-key-save").click()
    page.wait_for(lambda: "refused this API key" in page.find("key-panel").text, "the wrong key's refusal")
    assert "Incorrect or missing API key" in page.error_text()  # the server's own message
    key_field.clear()
    key_field.send_keys(KEY)
    page.find("api-key-save").click()
    models = page.wait_for(page.models, "the model list")
    assert "tiny-en" in models
    assert page.error_text() == ""
    assert page.driver.execute_script("return sessionStorage.getItem('stt.apiKey')") == KEY
    labels = [label for _, label in page.model_options()]
    assert any(label.startswith("●") and "tiny-en" in label for label in labels), labels  # preloaded: loaded
    assert JFK_PHRASE in _words(page.transcribe(jfk_path))
    # The only console error: the browser's own note of the first, keyless /v1/models call's 401.
    assert page.console_errors(allowed=(KEYLESS_401,)) == []


def test_jfk_upload_streams_a_transcript_with_timed_segments(page: Page, jfk_path):
    page.open()
    assert JFK_PHRASE in _words(page.transcribe(jfk_path))
    assert page.find("segments").get_attribute("data-source") == "stream"  # times from the SSE deltas themselves
    segments = page.segments()
    assert len(segments) >= 2 and all(re.fullmatch(r"\d+:\d\d\.\d – \d+:\d\d\.\d", s["time"]) for s in segments)
    assert segments[0]["start"] == pytest.approx(0.0, abs=1.0) and segments[-1]["end"] == pytest.approx(11.0, abs=1.0)
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)
    assert " ".join(s["text"] for s in segments) == page.find("transcript").text
    # Clicking a segment plays that part of the audio.
    page.find_all('[data-testid="segments"] button.segment')[1].click()
    at = lambda: page.driver.execute_script("return document.getElementById('player').currentTime")  # noqa: E731
    page.wait_for(lambda: at() >= segments[1]["start"] - 0.05, "the player at the second segment", 10)
    assert page.console_errors() == []


def test_downloads_are_valid_subtitles_and_json(page: Page, jfk_path):
    import srt
    import webvtt

    page.open()
    text = page.transcribe(jfk_path)
    segments = page.segments()
    subtitles = list(srt.parse(page.download("srt")))
    assert [s.content for s in subtitles] == [s["text"] for s in segments]
    assert [s.start.total_seconds() for s in subtitles] == pytest.approx([s["start"] for s in segments], abs=0.001)
    captions = webvtt.from_string(page.download("vtt")).captions
    assert [c.text for c in captions] == [s["text"] for s in segments]
    assert [c.end_in_seconds for c in captions] == pytest.approx([s["end"] for s in segments], abs=0.001)
    assert page.download("txt").strip() == text
    body = json.loads(page.download("json"))
    assert body["text"] == text and len(body["segments"]) == len(segments)
    turns = [json.loads(line) for line in page.download("jsonl").splitlines()]
    assert len(turns) == 1 and turns[0]["speaker"] is None and turns[0]["text"] == text  # one (unknown) speaker
    assert not page.find("download-rttm").is_displayed()  # no speakers labelled: no RTTM
    assert page.console_errors() == []


def test_word_timestamps_make_words_clickable(page: Page, jfk_path):
    page.open()
    page.find("words").click()
    page.transcribe(jfk_path)
    segments = page.segments()
    assert sum(s["words"] for s in segments) >= 15  # "And so, my fellow Americans, ask not ..." word by word
    body = json.loads(page.download("json"))
    assert len(body["words"]) == sum(s["words"] for s in segments)
    assert page.console_errors() == []


def test_a_bad_file_shows_the_servers_error_message(page: Page, page_server, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"these are meeting notes, not audio\n" * 20)
    with bad.open("rb") as f:
        answer = httpx.post(f"{page_server.url}/v1/audio/transcriptions", files={"file": f},
                            headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert answer.status_code >= 400
    message = answer.json()["error"]["message"]
    page.open()
    page.choose_file(bad)
    page.submit()
    shown = page.wait_for(page.error_text, "the error message")
    assert message in shown and str(answer.status_code) in shown
    assert page.find("transcript").text == "" and page.segments() == []
    assert page.console_errors(allowed=(f"the server responded with a status of {answer.status_code}",)) == []


def test_diarization_shows_the_speakers_in_colours(page: Page, corpus_dir):
    call = corpus_dir / MULTI_SPEAKER
    if not call.is_file():
        pytest.skip(f"multi-speaker file not found: {call}")
    page.open()
    page.find("diarize").click()
    speakers = page.find("speakers")
    assert speakers.is_enabled()
    speakers.send_keys("2")
    page.transcribe(call)
    segments = page.segments()
    labels = {s["speaker"] for s in segments}
    assert len(labels) >= 2 and None not in labels
    colours = {s["speaker"]: s["colour"] for s in segments}
    assert len(set(colours.values())) == len(labels)  # a colour per speaker
    turns = [json.loads(line) for line in page.download("jsonl").splitlines()]
    assert len({t["speaker"] for t in turns}) >= 2
    rttm = [line.split() for line in page.download("rttm").splitlines()]
    assert len(rttm) == len(turns) and all(len(fields) == 10 and fields[0] == "SPEAKER" for fields in rttm)
    assert {fields[1] for fields in rttm} == {call.stem}
    assert {fields[7] for fields in rttm} == {t["speaker"] for t in turns}
    assert [float(fields[3]) for fields in rttm] == pytest.approx([t["start"] for t in turns], abs=0.001)
    if screenshot := os.environ.get(SCREENSHOT_ENV):
        page.driver.execute_script("window.scrollTo(0, 0)")
        page.driver.save_screenshot(screenshot)
    assert page.console_errors() == []


def test_a_microphone_recording_transcribes(page: Page):
    page.open()
    record = page.find("record")
    record.click()
    page.wait_for(lambda: record.get_attribute("aria-pressed") == "true", "the recording to start", 15)
    time.sleep(12.0)  # the whole 11 s excerpt from the fake microphone
    record.click()
    page.wait_for(lambda: re.search(r"recording-\S+\.(webm|ogg|m4a)", page.find("file-name").text), "the recording")
    page.submit()
    page.wait_until_idle()
    assert page.error_text() == ""
    heard = _words(page.find("transcript").text)
    assert JFK_PHRASE in heard, heard
    assert page.console_errors() == []


def test_live_captions_show_the_words_as_they_come(page: Page):
    page.open()
    live = page.find("live")
    live.click()
    page.wait_for(lambda: live.get_attribute("aria-pressed") == "true", "the live session", 30)
    partial_seen = []

    def heard_the_phrase() -> bool:
        lines = page.driver.execute_script(
            """return [...document.querySelectorAll('[data-testid="live-captions"] p')]
                .map(p => ({final: p.classList.contains('final'), text: p.textContent}))"""
        )
        partial_seen.extend(line["text"] for line in lines if not line["final"] and line["text"].strip())
        return "country" in _words(" ".join(line["text"] for line in lines if line["final"]))

    page.wait_for(heard_the_phrase, "a final live caption with the words", 90)
    assert partial_seen, "no delta was shown before a turn completed"
    live.click()
    page.wait_for(lambda: live.get_attribute("aria-pressed") == "false", "the live session to stop", 15)
    assert page.error_text() == ""
    assert page.console_errors() == []


def test_a_long_file_streams_in_with_progress(page: Page, long_concat):
    page.open()
    page.choose_file(long_concat.path)
    page.wait_for(lambda: page.driver.execute_script("return isFinite(document.getElementById('player').duration)"),
                  "the player to know the file's length", 20)
    # Every change the page makes while the answer streams in, in order (however fast the server answers).
    page.driver.execute_script(
        """window.changes = [];
           new MutationObserver(records => records.forEach(r => {
             if (r.target.id === 'status-text') r.addedNodes.forEach(n => window.changes.push(['status', n.data]));
             else if (r.target.id === 'segments') r.addedNodes.forEach(() => window.changes.push(['segment']));
             else if (r.target.id === 'progress') window.changes.push(['progress', r.oldValue]);
           })).observe(document.querySelector('main'), {subtree: true, childList: true, attributes: true,
                                                        attributeFilter: ['value'], attributeOldValue: true});"""
    )
    page.submit()
    page.wait_until_idle()
    assert page.error_text() == ""
    changes = page.driver.execute_script("return window.changes")
    final = len(page.segments())
    progress_text = re.compile(r"Transcribing… \d+:\d\d\.\d of 1:4\d\.\d")  # the file is 1:43.6 long
    shown = [i for i, change in enumerate(changes) if change[0] == "status" and progress_text.fullmatch(change[1])]
    assert shown, changes[:20]
    # Progress is shown while segments are still to come, and the bar moves between empty and full.
    assert any(change[0] == "segment" for change in changes[shown[0]:])
    values = [float(change[1]) for change in changes if change[0] == "progress" and change[1] not in (None, "")]
    assert any(0 < value < 1 for value in values), values
    assert page.find("segments").get_attribute("data-source") == "stream" and final > 10
    assert page.console_errors() == []


def test_translation(page: Page, jfk_path):
    page.open()
    page.find("task-translate").click()
    assert page.find("submit").text == "Translate"
    assert not page.find("diarize").is_enabled() and not page.find("words").is_enabled()
    assert JFK_PHRASE in _words(page.transcribe(jfk_path))
    assert page.find("segments").get_attribute("data-source") == "response" and page.segments()
    assert json.loads(page.download("json"))["task"] == "translate"
    assert page.console_errors() == []


def test_controls_are_labelled_and_reachable_by_keyboard(page: Page, jfk_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.open()
    page.choose_file(jfk_path)  # the submit button is enabled once there is a file
    controls = ["model", "language", "task-transcribe", "words", "diarize", "speakers", "file", "record", "submit",
                "live", "api-key"]
    names = {testid: page.find(testid).accessible_name.strip() for testid in controls}
    assert all(names.values()), names
    page.driver.find_element("tag name", "body").click()
    reached = set()
    for _ in range(40):
        ActionChains(page.driver).send_keys(Keys.TAB).perform()
        reached.add(page.driver.execute_script("return document.activeElement.dataset.testid || null"))
    expected = {"model", "language", "task-transcribe", "words", "diarize", "file", "record", "submit", "live",
                "api-key"}
    assert expected <= reached, expected - reached
    page.find("submit").send_keys(Keys.ENTER)  # a keyboard press starts the transcription
    page.wait_until_idle()
    assert JFK_PHRASE in _words(page.find("transcript").text)
    assert page.console_errors() == []


def test_the_page_and_its_files_need_no_key_and_the_api_docs_moved_to_docs(page_server):
    url = page_server.url
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-testid="transcript"' in page.text
    for asset in re.findall(r'(?:src|href)="(ui/[^"]+)"', page.text):
        assert httpx.get(f"{url}/{asset}").status_code == 200, asset
    assert httpx.get(f"{url}/v1/models").status_code == 401  # the API the page calls still needs the key
    auth = {"Authorization": f"Bearer {KEY}"}
    docs = httpx.get(f"{url}/docs", headers=auth)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()  # BentoML's own Swagger page
    assert "/transcribe" in httpx.get(f"{url}/docs.json", headers=auth).json()["paths"]
    assert httpx.get(f"{url}/static_content/swagger-ui.css", headers=auth).status_code == 200


def test_a_dropped_file_is_transcribed(page: Page, jfk_path):
    page.open()
    # What the browser hands the page when a file is dragged from the desktop onto the drop zone.
    page.driver.execute_script(
        """const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
           const data = new DataTransfer();
           data.items.add(new File([bytes], arguments[1], {type: 'audio/flac'}));
           const zone = document.querySelector('[data-testid="drop"]');
           for (const type of ['dragenter', 'dragover', 'drop']) {
             zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
           }""",
        base64.b64encode(jfk_path.read_bytes()).decode(), jfk_path.name,
    )
    page.wait_for(lambda: jfk_path.name in page.find("file-name").text, "the dropped file")
    page.submit()
    page.wait_until_idle()
    assert JFK_PHRASE in _words(page.find("transcript").text)
    assert page.console_errors() == []


def test_cancel_stops_a_long_transcription(page: Page, long_concat):
    page.open()
    page.choose_file(long_concat.path)
    # Press Cancel as soon as the first segment shows, from the page itself: a fast server finishes in moments.
    page.driver.execute_script(
        """new MutationObserver((_, observer) => {
             observer.disconnect();
             document.querySelector('[data-testid="cancel"]').click();
           }).observe(document.querySelector('[data-testid="segments"]'), {childList: true});"""
    )
    page.submit()
    page.wait_until_idle()
    if page.find("downloads").is_displayed():
        pytest.skip("the server transcribed the whole file before the page could cancel")
    assert "Cancelled" in page.error_text() and not page.find("cancel").is_displayed()
    assert page.segments() and page.segments()[-1]["end"] < long_concat.duration_s - 10
    assert page.console_errors() == []
