"""The causal language model of OSM: any transformers causal LM and its tokenizer, loaded by path.

``load_causal_lm(path)`` accepts a folder written by ``save_pretrained`` (a Hugging Face model
downloaded beforehand, or the tiny GPT-2 that ``tools/train_osm.py`` pretrains on OV-Shapes
caption text). Remote code runs only when asked for (``trust_remote_code``). A missing folder, a
folder without tokenizer files and a model that is not a causal LM raise errors naming the path.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "LanguageModel",
    "build_tiny_gpt2",
    "load_causal_lm",
    "train_word_tokenizer",
]

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
)
SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>"}


def _causal_class_names() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update([value] if isinstance(value, str) else value)
    return names


def _check_causal(path: str) -> None:
    """Raise unless the folder's config describes a causal LM (its saved architecture is one of
    transformers' causal-LM classes; without a saved architecture, its model type has one)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"language model '{path}' has no config.json")
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    architectures = config.get("architectures") or []
    model_type = config.get("model_type", "")
    causal = (
        bool(set(architectures) & _causal_class_names())
        if architectures
        else model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    )
    if not causal:
        raise ValueError(
            f"language model '{path}' is not a causal LM (model_type {model_type!r}, "
            f"architectures {architectures}); OSM needs a causal LM"
        )


def load_causal_lm(path: str | os.PathLike, trust_remote_code: bool = False) -> LanguageModel:
    """A causal LM and its tokenizer from a local folder, as a :class:`LanguageModel`.

    Args:
        path: folder holding ``config.json``, the weights and the tokenizer files.
        trust_remote_code: allow the folder's own modelling code to run (off by default).

    Raises:
        FileNotFoundError: no such folder, or no ``config.json`` in it.
        ValueError: no tokenizer files in the folder, a model that is not a causal LM, or a
            tokenizer without an end-of-sequence token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"language model folder '{path}' does not exist")
    if not any(os.path.isfile(os.path.join(path, f)) for f in _TOKENIZER_FILES):
        raise ValueError(
            f"language model folder '{path}' has no tokenizer (none of {list(_TOKENIZER_FILES)}); "
            "save the tokenizer beside the model with tokenizer.save_pretrained(path)"
        )
    _check_causal(path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
    return LanguageModel(model, tokenizer, source=path)


class LanguageModel(nn.Module):
    """A causal LM with its tokenizer, seen through what OSM needs: token ids of a text, token
    embeddings, and next-token logits of embedded sequences.

    Args:
        model: a transformers causal LM (``PreTrainedModel`` with ``get_input_embeddings``).
        tokenizer: its tokenizer; needs an end-of-sequence token.
        source: where it was loaded from (named in errors).
    """

    def __init__(self, model: nn.Module, tokenizer: object, source: str = "<memory>"):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        if getattr(tokenizer, "eos_token_id", None) is None:
            raise ValueError(f"the tokenizer of language model '{source}' has no eos token")
        self.eos_id = int(tokenizer.eos_token_id)
        bos = getattr(tokenizer, "bos_token_id", None)
        self.bos_id = int(bos) if bos is not None else self.eos_id
        # transformers >= 5.2x names the key/value cache "cache", earlier ones "past_key_values"
        params = inspect.signature(model.forward).parameters
        self._cache_name = "cache" if "cache" in params else "past_key_values"

    @property
    def embed_dim(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])

    @property
    def max_positions(self) -> int | None:
        """The longest input the model takes (its config's position count), None if unstated."""
        config = getattr(self.model, "config", None)
        for key in ("n_positions", "max_position_embeddings"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def check_length(self, length: int, what: str = "input") -> None:
        """Raise a ValueError naming the LM folder when ``length`` positions do not fit."""
        limit = self.max_positions
        if limit is not None and length > limit:
            raise ValueError(
                f"{what} of {length} tokens is longer than language model '{self.source}' takes "
                f"({limit} positions): use fewer MaskQ-Former queries (MODEL.OSM.NUM_MASK_QUERIES, "
                "NUM_CONTEXT_QUERIES), shorter answers or an LM with more positions"
            )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """``ids`` as text, special tokens left out."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True)).strip()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """``LongTensor[...]`` token ids -> ``Tensor[..., E]`` input embeddings."""
        return self.model.get_input_embeddings()(ids)

    def logits(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``Tensor[B, L, E]`` input embeddings (right-padded) -> ``Tensor[B, L, V]`` logits."""
        self.check_length(embeds.shape[1])
        out = self.model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        return out.logits

    def prefix_state(self, embeds: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Run a prefix once: ``Tensor[N, P, E]`` -> (``Tensor[N, V]`` logits of the token after
        it, the model's key/value cache of it)."""
        self.check_length(embeds.shape[1], "the prefix")
        out = self.model(inputs_embeds=embeds, use_cache=True)
        return out.logits[:, -1], out[self._cache_name]

    def logits_after(self, cache: Any, rows: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Logits of ``embeds`` ``Tensor[R, T, E]`` continuing the cached prefixes ``rows``
        (``LongTensor[R]``, repeats allowed) -> ``Tensor[R, T, V]``; ``cache`` is not changed."""
        self.check_length(cache.get_seq_length() + embeds.shape[1], "the prefix and continuation")
        cache = copy.deepcopy(cache)
        cache.batch_select_indices(rows)
        kwargs = {self._cache_name: cache}
        return self.model(inputs_embeds=embeds, use_cache=True, **kwargs).logits

    def freeze(self, trainable_last_layers: int = 0) -> None:
        """Freeze the LM except its last ``trainable_last_layers`` transformer blocks (the
        largest ``ModuleList`` of the model) and, with any, the final norm and output head."""
        self.model.requires_grad_(False)
        if trainable_last_layers <= 0:
            return
        blocks = max(
            (m for m in self.model.modules() if isinstance(m, nn.ModuleList)), key=len, default=None
        )
        if blocks is None:
            raise ValueError(f"language model '{self.source}' has no list of transformer blocks")
        for block in list(blocks)[-trainable_last_layers:]:
            block.requires_grad_(True)
        head = self.model.get_output_embeddings()
        if head is not None and head.weight is not self.model.get_input_embeddings().weight:
            head.requires_grad_(True)


def train_word_tokenizer(texts: Iterable[str], min_frequency: int = 1) -> object:
    """A word-level tokenizer learnt from ``texts`` (lower-cased; words and punctuation runs are
    tokens), wrapped as a transformers ``PreTrainedTokenizerFast`` with pad/unk/bos/eos tokens."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token=SPECIAL_TOKENS["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(
        special_tokens=list(SPECIAL_TOKENS.values()), min_frequency=min_frequency
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
    )


def build_tiny_gpt2(
    tokenizer: object, *, dim: int = 192, layers: int = 4, heads: int = 4, positions: int = 64
) -> nn.Module:
    """A randomly initialised GPT-2 (``GPT2LMHeadModel``) sized for ``tokenizer``'s vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=positions,
        n_embd=dim,
        n_layer=layers,
        n_head=heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)
