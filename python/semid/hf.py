"""Constrained decoding for HuggingFace ``generate``.

``SidLogitsProcessor`` is a ``transformers.LogitsProcessor`` that lets a
language model emit only valid semantic IDs: at every step it sets -inf on
every token the trie of IDs forbids, for all beams of the batch in one call
into Rust. It replaces ``prefix_allowed_tokens_fn`` over a Python dict trie,
which costs one Python call per beam per step.

Needs ``torch`` and ``transformers`` (``pip install semid[hf]``); importing
this module without them raises ImportError.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
from transformers import LogitsProcessor

from ._semid import SemanticIndex, Trie, VocabConstraint
from .tokens import add_sid_tokens

__all__ = ["SidLogitsProcessor", "add_sid_tokens"]


class SidLogitsProcessor(LogitsProcessor):
    """Masks next-token scores so that generation spells valid semantic IDs.

    Args:
        trie: the IDs (a ``semid.Trie``, or a ``semid.SemanticIndex`` whose
            trie is used).
        vocab_size: the model's vocabulary size (``model.config.vocab_size``).
        offsets: model token of level ``l`` code ``c`` is ``offsets[l] + c``.
        token_table: instead of ``offsets``, one sequence per level mapping
            each code to its model token.
        prompt_length: number of positions before the first SID token
            (``input_ids.shape[1]`` of the prompts passed to ``generate``).
        eos_token_id: when given, the only token allowed after a whole ID
            and on a row that is no valid prefix. Without it a dead beam (no
            valid prefix) gets every score -inf, and a row past a whole ID
            raises ``ValueError``: the processor fails closed and never
            leaves a row unconstrained (MiniOneRec #50), so generate exactly
            ``id_len`` new tokens.

    Scores on the CPU in float32 are masked in place; others (GPU, half
    precision) through a boolean mask built in Rust and moved to their
    device.
    """

    def __init__(
        self,
        trie: Union[Trie, SemanticIndex],
        vocab_size: int,
        *,
        offsets: Optional[Sequence[int]] = None,
        token_table: Optional[Sequence[Sequence[int]]] = None,
        prompt_length: int,
        eos_token_id: Optional[int] = None,
    ) -> None:
        if isinstance(trie, SemanticIndex):
            trie = trie.trie
        if token_table is not None:
            token_table = [[int(t) for t in row] for row in token_table]
        self.constraint = VocabConstraint(
            trie,
            vocab_size,
            offsets=None if offsets is None else [int(o) for o in offsets],
            token_table=token_table,
            eos_token_id=eos_token_id,
        )
        if prompt_length < 0:
            raise ValueError(f"prompt_length is {prompt_length}; it must be >= 0")
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] < self.prompt_length:
            raise ValueError(
                f"input_ids have {input_ids.shape[1]} positions, fewer than "
                f"prompt_length = {self.prompt_length}"
            )
        # Only the generated tokens cross into Rust.
        tail = input_ids[:, self.prompt_length :].detach().cpu().numpy()
        ids = np.ascontiguousarray(tail, dtype=np.int64)
        if (
            scores.device.type == "cpu"
            and scores.dtype == torch.float32
            and scores.is_contiguous()
            and not scores.requires_grad
        ):
            self.constraint.apply(ids, 0, scores.numpy())
            return scores
        mask = torch.from_numpy(self.constraint.mask(ids, 0))
        v = mask.shape[1]
        out = scores.clone()
        out[:, :v] = out[:, :v].masked_fill(~mask.to(scores.device), float("-inf"))
        if scores.shape[1] > v:
            # Rows under the constraint forbid the columns past vocab_size too.
            constrained = ~mask.all(dim=1).to(scores.device)
            out[constrained, v:] = float("-inf")
        return out
