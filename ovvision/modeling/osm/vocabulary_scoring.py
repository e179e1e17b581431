"""Vocabulary ranking with a generative model, and matching free-text names to classes.

A class's score for a mask is the probability the language model gives its name after the
visual prefix and the prompt: the product of the name's token probabilities (and of the end
token after it), best over the class's names, synonyms and their plural forms. Free-text names
are matched to classes by their lower-cased singular words (lemminflect, through the caption-noun
helpers of :mod:`ovvision.modeling.text`), so "rings" is "ring".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lemminflect import getInflection

from ovvision.modeling.text.caption_nouns import caption_words, lemmatize_noun
from ovvision.structures import ClassList

from .language_model import LanguageModel

__all__ = ["NameMatcher", "VocabularyScorer", "name_key", "name_log_probs", "plural"]


def name_key(name: str) -> tuple[str, ...]:
    """The words of ``name`` lower-cased and singular (``"Red Rings"`` -> ``("red", "ring")``)."""
    return tuple(lemmatize_noun(w) for w in caption_words(name))


def plural(name: str) -> str:
    """``name`` with its last word in the plural (``"traffic light"`` -> ``"traffic lights"``)."""
    words = name.split()
    if not words:
        return name
    forms = getInflection(words[-1], tag="NNS")
    return " ".join([*words[:-1], forms[0]]) if forms else name


class NameMatcher:
    """Which class of a vocabulary a free-text name is: one of its names or synonyms, in the
    singular or the plural, case and punctuation ignored.

    Raises:
        ValueError: two classes share a name (a generated name would be ambiguous).
    """

    def __init__(self, classes: ClassList):
        self.classes = classes
        self._index: dict[tuple[str, ...], int] = {}
        for i, (name, synonyms) in enumerate(zip(classes.names, classes.synonyms)):
            for phrase in (name, *synonyms):
                key = name_key(phrase)
                if key and self._index.setdefault(key, i) != i:
                    raise ValueError(
                        f"classes '{classes.names[self._index[key]]}' and '{name}' share the name "
                        f"'{phrase}'"
                    )

    def __call__(self, name: str) -> int | None:
        """The class index of ``name``, or None when it names no class of the vocabulary."""
        return self._index.get(name_key(name))


def name_log_probs(
    lm: LanguageModel,
    prefix: torch.Tensor,
    names: Sequence[Sequence[int]],
    end_token: bool = True,
    chunk: int = 4096,
) -> torch.Tensor:
    """Log-probability of each token sequence after each prefix.

    Args:
        lm: the language model.
        prefix: ``Tensor[N, P, E]`` input embeddings (visual tokens and prompt).
        names: S token sequences (each non-empty).
        end_token: also count the end token after the name.
        chunk: name sequences run through the model at once (prefixes run once each).

    Returns:
        ``Tensor[N, S]``: sum over the name's tokens of ``log p(token | prefix, earlier tokens)``.
    """
    if any(len(n) == 0 for n in names):
        raise ValueError("a name to score has no token")
    seqs = [list(t) + ([lm.eos_id] if end_token else []) for t in names]
    s, length = len(seqs), max(len(t) for t in seqs)
    targets = torch.full((s, length), -1, dtype=torch.int64, device=prefix.device)
    for j, t in enumerate(seqs):
        targets[j, : len(t)] = torch.tensor(t, device=prefix.device)
    valid = targets >= 0
    inputs = lm.embed(targets[:, :-1].clamp(min=0)).to(prefix.dtype)  # [S, T-1, E]
    out = torch.zeros(len(prefix), s, dtype=torch.float32, device=prefix.device)
    per_chunk = max(1, chunk // s)
    for start in range(0, len(prefix), per_chunk):
        last, cache = lm.prefix_state(prefix[start : start + per_chunk])
        k = len(last)
        total = last.float().log_softmax(dim=-1)[:, targets[:, 0]]  # first tokens [k, S]
        if length > 1:  # the later tokens, continuing each prefix's cache
            rows = torch.arange(k, device=prefix.device).repeat_interleave(s)
            logp = lm.logits_after(cache, rows, inputs.repeat(k, 1, 1)).float().log_softmax(-1)
            later = targets[:, 1:].clamp(min=0).repeat(k, 1)[..., None]
            picked = logp.gather(-1, later)[..., 0] * valid[:, 1:].repeat(k, 1)
            total = total + picked.sum(dim=1).view(k, s)
        out[start : start + k] = total
    return out


class VocabularyScorer:
    """Per class the log-probability of its best name (names, synonyms and their plurals).

    Args:
        lm: the language model (its tokenizer turns names into tokens).
        classes: the vocabulary.
        plurals: also score each name's plural form.
        end_token: count the end token after a name.
    """

    def __init__(
        self, lm: LanguageModel, classes: ClassList, plurals: bool = True, end_token: bool = True
    ):
        self.classes = classes
        self.end_token = end_token
        self.sequences: list[list[int]] = []
        owners: list[int] = []
        for i, (name, synonyms) in enumerate(zip(classes.names, classes.synonyms)):
            phrases = [name, *synonyms]
            if plurals:
                phrases += [plural(ph) for ph in phrases]
            seen: set[tuple[int, ...]] = set()
            for phrase in phrases:
                ids = tuple(lm.encode(phrase))
                if ids and ids not in seen:
                    seen.add(ids)
                    self.sequences.append(list(ids))
                    owners.append(i)
        if not self.sequences:
            raise ValueError("no class name of the vocabulary has a token")
        self.owners = torch.tensor(owners)

    def __call__(self, lm: LanguageModel, prefix: torch.Tensor) -> torch.Tensor:
        """``prefix`` ``Tensor[N, P, E]`` -> ``Tensor[N, C]`` class log-probabilities (each the
        best of its names; ``-inf`` for a class whose names have no token)."""
        per_name = name_log_probs(lm, prefix, self.sequences, self.end_token)
        owners = self.owners.to(per_name.device)
        out = per_name.new_full((len(prefix), len(self.classes)), float("-inf"))
        return out.scatter_reduce(
            1, owners.expand(len(prefix), -1), per_name, reduce="amax", include_self=True
        )
