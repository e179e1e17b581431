"""Greedy and beam-search decoding of a :class:`CaptionDecoder`."""

from __future__ import annotations

import torch

from .decoder import CaptionDecoder

__all__ = ["beam_search", "greedy_decode"]


@torch.no_grad()
def greedy_decode(
    decoder: CaptionDecoder,
    regions: torch.Tensor,
    region_mask: torch.Tensor,
    start: int,
    end: int,
    max_length: int,
) -> list[list[int]]:
    """The most likely next token, step by step, until the end token or ``max_length``.

    Args:
        decoder: the caption decoder.
        regions: ``Tensor[B, K, D]`` region embeddings (padded).
        region_mask: ``BoolTensor[B, K]`` real regions.
        start, end: token ids.
        max_length: tokens per sequence, start (and end, when reached) included.

    Returns:
        Per image its tokens, start first; the end token last when it was generated.
    """
    memory, pad = decoder.encode_memory(regions, region_mask)
    tokens = torch.full((len(regions), 1), start, dtype=torch.int64, device=regions.device)
    done = torch.zeros(len(regions), dtype=torch.bool, device=regions.device)
    while tokens.shape[1] < max_length and not bool(done.all()):
        step = decoder.next_token_logits(memory, pad, tokens).argmax(dim=-1)
        step = torch.where(done, torch.full_like(step, end), step)
        tokens = torch.cat([tokens, step[:, None]], dim=1)
        done |= step == end
    out = []
    for row in tokens.tolist():
        out.append(row[: row.index(end) + 1] if end in row else row)
    return out


@torch.no_grad()
def beam_search(
    decoder: CaptionDecoder,
    regions: torch.Tensor,
    region_mask: torch.Tensor,
    start: int,
    end: int,
    max_length: int,
    beam_size: int,
) -> list[list[int]]:
    """Beam search per image; hypotheses are ranked by mean token log-probability.

    A hypothesis ends at the end token or at ``max_length`` tokens; the search stops when
    ``beam_size`` hypotheses have ended or none is left open. Arguments as in
    :func:`greedy_decode`.

    Returns:
        Per image the best hypothesis' tokens, start first.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    return [
        _beam_one(decoder, regions[i : i + 1], region_mask[i : i + 1], start, end, max_length,
                  beam_size)
        for i in range(len(regions))
    ]  # fmt: skip


def _beam_one(
    decoder: CaptionDecoder,
    regions: torch.Tensor,
    region_mask: torch.Tensor,
    start: int,
    end: int,
    max_length: int,
    beam_size: int,
) -> list[int]:
    memory, pad = decoder.encode_memory(regions, region_mask)
    beams = torch.full((1, 1), start, dtype=torch.int64, device=regions.device)
    scores = torch.zeros(1, device=regions.device)
    finished: list[tuple[float, list[int]]] = []
    while len(finished) < beam_size and len(beams):
        n = len(beams)
        logits = decoder.next_token_logits(memory.expand(n, -1, -1), pad.expand(n, -1), beams)
        logp = logits.log_softmax(dim=-1)
        total = (scores[:, None] + logp).flatten()
        top = total.topk(min(beam_size, total.numel())).indices
        rows, words = top // logp.shape[1], top % logp.shape[1]
        candidates = torch.cat([beams[rows], words[:, None]], dim=1)
        ended = (words == end) | (candidates.shape[1] >= max_length)
        for seq, score in zip(candidates[ended].tolist(), total[top][ended].tolist()):
            finished.append((score / (len(seq) - 1), seq))
        beams, scores = candidates[~ended], total[top][~ended]
    return max(finished, key=lambda f: f[0])[1]
