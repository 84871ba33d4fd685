"""The best CPU split for the torch engines: torch intra-op threads per engine worker, against the number of
workers decoding at once, at concurrency 1 and 4.

    .venv/bin/python -m bench.hf_thread_split [--engines transformers,remote_code] [--repeats 3] [--utterances 12]

Real weights: the embedded tiny.en converted to a transformers checkpoint and to the LiteASR layout, as the
test fixtures do. Each configuration serves the English short utterances of the corpus through the
service's own batcher (``ClipBatcher`` with one thread per worker, batches of up to 8, its adaptive wait), the
clients sending ``concurrency`` utterances at a time. It prints audio seconds per second, min / median / max.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bench.corpus import audio_dir, english_short_utterances
from bench.throughput import spread
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from pipeline.pool import ClipBatcher
from server.settings import Settings
from strategies.base import RuntimeContext
from strategies.factory import create_engine


def model_specs(root: Path, engines: list[str]) -> dict[str, ModelSpec]:
    from bench.checkpoints import build_hf_whisper_checkpoint, build_lite_asr_checkpoint, ct2_tiny_en_dir

    hf_dir = build_hf_whisper_checkpoint(ct2_tiny_en_dir(), root / "whisper-tiny.en")
    specs = {"transformers": ModelSpec(id="hf-tiny", engine="transformers", model=str(hf_dir))}
    if "remote_code" in engines:
        lite, processor = build_lite_asr_checkpoint(hf_dir, root / "lite-tiny.en", root / "processor")
        specs["remote_code"] = ModelSpec(
            id="lite-tiny", engine="remote_code", model=str(lite), processor=str(processor), trust_remote_code=True
        )
    return {engine: specs[engine] for engine in engines}


def audio_per_s(spec: ModelSpec, clips: list, audio_s: float, workers: int, threads: int, concurrency: int) -> float:
    torch.set_num_threads(threads)
    runtime = RuntimeContext("cpu", HubAccess(), cpu_threads=threads, cpu_cores=Settings().cpu_cores,
                             engine_workers=workers)
    engine = create_engine(spec, runtime)
    engine.load()
    batcher = ClipBatcher(engine.transcribe_clips, workers=workers, name="bench")
    options = TranscribeOptions(language="en")
    try:
        batcher.decode(clips[:1], options)  # warm-up
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda clip: batcher.decode([clip], options), clips))
        return audio_s / (time.perf_counter() - started)
    finally:
        batcher.close()
        engine.unload()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="transformers,remote_code")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=12)
    args = parser.parse_args()

    utterances = english_short_utterances(audio_dir())[: args.utterances]
    if not utterances:
        print(f"no corpus at {audio_dir()}", file=sys.stderr)
        return 2
    clips = [decode_audio(u.path) for u in utterances]
    audio_s = sum(u.duration_s for u in utterances)
    cores = Settings().cpu_cores
    configs = sorted({(1, cores), (cores, 1)})
    with tempfile.TemporaryDirectory() as tmp:
        specs = model_specs(Path(tmp), args.engines.split(","))
        print(f"{len(clips)} utterances, {audio_s:.0f} s of audio; {cores} cores; audio s/s, min / median / max "
              f"over {args.repeats} runs")
        print("| engine | workers x torch threads | concurrency 1 | concurrency 4 |")
        print("|---|---|---|---|")
        for engine, spec in specs.items():
            for workers, threads in configs:
                cells = [
                    spread([audio_per_s(spec, clips, audio_s, workers, threads, c) for _ in range(args.repeats)])
                    for c in (1, 4)
                ]
                print(f"| {engine} | {workers} x {threads} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
