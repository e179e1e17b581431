"""Caption tokens on the tokenizer of the configured open_clip text encoder."""

from __future__ import annotations

from collections.abc import Sequence

import open_clip
import torch

from ovvision.modeling.text import register_project_model_configs

__all__ = ["PAD_TOKEN", "CaptionTokenizer"]

PAD_TOKEN = 0  # open_clip pads with 0; positions after the end token are never targets


class CaptionTokenizer:
    """open_clip's BPE tokenizer with start/end tokens and a length limit of our own (open_clip's
    ``context_length`` is the text encoder's, e.g. 16 for the OV-Shapes tiny CLIP).

    Args:
        tokenizer: an ``open_clip.SimpleTokenizer`` (the tokenizer of CLIP models).
        max_length: tokens per caption, start and end tokens included (>= 3).

    Raises:
        TypeError: another kind of tokenizer (Hugging Face ones are not supported yet).
        ValueError: ``max_length`` < 3.
    """

    def __init__(self, tokenizer: object, max_length: int):
        if not isinstance(tokenizer, open_clip.SimpleTokenizer):
            raise TypeError(
                f"caption generation needs open_clip's SimpleTokenizer (CLIP models), got "
                f"{type(tokenizer).__name__}; choose another MODEL.TEXT_ENCODER.NAME"
            )
        if max_length < 3:
            raise ValueError(f"MODEL.CAPTION_GENERATION.MAX_LENGTH must be >= 3, got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.start = int(tokenizer.sot_token_id)
        self.end = int(tokenizer.eot_token_id)
        self.vocab_size = int(tokenizer.vocab_size)

    @classmethod
    def from_name(cls, name: str, max_length: int) -> CaptionTokenizer:
        """The tokenizer of open_clip model (or ovvision model config) ``name``; no download."""
        register_project_model_configs()
        return cls(open_clip.get_tokenizer(name), max_length)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """``LongTensor[N, max_length]``: start, the text's tokens (cut to fit), end, padding."""
        out = torch.full((len(texts), self.max_length), PAD_TOKEN, dtype=torch.int64)
        for row, text in enumerate(texts):
            ids = [self.start, *self.tokenizer.encode(text)[: self.max_length - 2], self.end]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated tokens: a leading start token is skipped, the end token ends it."""
        words = []
        for i in (int(x) for x in ids):
            if i == self.end:
                break
            if i != self.start:
                words.append(i)
        return self.tokenizer.decode(words).strip()
