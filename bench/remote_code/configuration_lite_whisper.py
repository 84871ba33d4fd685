"""Configuration of a LiteASR-style Whisper with low-rank encoder projections (test fixture)."""

from __future__ import annotations

from transformers import WhisperConfig


class LiteWhisperConfig(WhisperConfig):
    """Whisper config plus ``low_rank_config``: one ``{projection name: rank}`` dict per encoder layer."""

    model_type = "lite-whisper"

    def __init__(self, low_rank_config: list[dict[str, int]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.low_rank_config = low_rank_config
