"""Greedy and beam-search decoding of a name after a visual + prompt prefix.

The prefixes (visual tokens and prompt) run through the language model once; each step runs only
the name's tokens so far (a few) against their key/value cache.
"""

from __future__ import annotations

import torch

from .language_model import LanguageModel

__all__ = ["beam_search", "greedy_decode"]


class _Prefixes:
    """The prefixes run once through the LM (key/value cache); each step continues them."""

    def __init__(self, lm: LanguageModel, prefix: torch.Tensor):
        self.lm = lm
        self.dtype = prefix.dtype
        self.last, self.cache = lm.prefix_state(prefix)

    def next_logits(self, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the token after prefix ``rows[i]`` followed by ``tokens[i]``
        (``LongTensor[R, T]``) -> ``Tensor[R, V]``."""
        if tokens.shape[1] == 0:
            return self.last[rows].float()
        embeds = self.lm.embed(tokens).to(self.dtype)
        return self.lm.logits_after(self.cache, rows, embeds)[:, -1].float()


@torch.no_grad()
def greedy_decode(lm: LanguageModel, prefix: torch.Tensor, max_tokens: int) -> list[list[int]]:
    """The most likely token step by step until the end token or ``max_tokens`` tokens.

    Args:
        lm: the language model.
        prefix: ``Tensor[N, P, E]`` input embeddings before the answer.
        max_tokens: length limit of an answer (end token excluded).

    Returns:
        Per row its answer's token ids, without the end token.
    """
    n = len(prefix)
    tokens = prefix.new_zeros(n, 0, dtype=torch.int64)
    if n == 0 or max_tokens < 1:
        return [[] for _ in range(n)]
    state = _Prefixes(lm, prefix)
    rows = torch.arange(n, device=prefix.device)
    done = torch.zeros(n, dtype=torch.bool, device=prefix.device)
    while tokens.shape[1] < max_tokens and not bool(done.all()):
        step = state.next_logits(rows, tokens).argmax(dim=-1)
        step = torch.where(done, torch.full_like(step, lm.eos_id), step)
        tokens = torch.cat([tokens, step[:, None]], dim=1)
        done |= step == lm.eos_id
    return [row[: row.index(lm.eos_id)] if lm.eos_id in row else row for row in tokens.tolist()]


@torch.no_grad()
def beam_search(
    lm: LanguageModel, prefix: torch.Tensor, max_tokens: int, beam_size: int
) -> list[list[int]]:
    """Beam search per row; finished hypotheses are ranked by mean token log-probability (the
    end token counted when generated). ``beam_size`` 1 gives :func:`greedy_decode`'s answers.

    Args:
        lm, prefix, max_tokens: as in :func:`greedy_decode`.
        beam_size: hypotheses kept per step.

    Returns:
        Per row the best answer's token ids, without the end token.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if len(prefix) == 0 or max_tokens < 1:
        return [[] for _ in range(len(prefix))]
    state = _Prefixes(lm, prefix)
    return [_beam_one(lm, state, i, max_tokens, beam_size) for i in range(len(prefix))]


def _beam_one(
    lm: LanguageModel, state: _Prefixes, row: int, max_tokens: int, beam_size: int
) -> list[int]:
    device = state.last.device
    beams = torch.zeros(1, 0, dtype=torch.int64, device=device)
    scores = torch.zeros(1, dtype=torch.float32, device=device)
    finished: list[tuple[float, list[int]]] = []
    while len(finished) < beam_size and len(beams):
        rows = torch.full((len(beams),), row, dtype=torch.int64, device=device)
        logp = state.next_logits(rows, beams).log_softmax(dim=-1)
        total = (scores[:, None] + logp).flatten()
        top = total.topk(min(beam_size - len(finished), total.numel())).indices
        rows, words = top // logp.shape[1], top % logp.shape[1]
        candidates = torch.cat([beams[rows], words[:, None]], dim=1)
        ended = words == lm.eos_id
        at_limit = ~ended & (candidates.shape[1] >= max_tokens)
        for seq, score in zip(candidates[ended].tolist(), total[top][ended].tolist()):
            finished.append((score / len(seq), seq[:-1]))
        for seq, score in zip(candidates[at_limit].tolist(), total[top][at_limit].tolist()):
            finished.append((score / len(seq), seq))
        keep = ~ended & ~at_limit
        beams, scores = candidates[keep], total[top][keep]
    return max(finished, key=lambda f: f[0])[1] if finished else []
