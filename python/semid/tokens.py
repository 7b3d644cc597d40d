"""Semantic-ID tokens for language models (LC-Rec, MiniOneRec, OpenOneRec).

``add_sid_tokens`` adds one text token per code of every ID position
(``<a_0>`` … ``<d_45>``) to a HuggingFace tokenizer, resizes the model's
embeddings to match, and returns the token table that
``semid.hf.SidLogitsProcessor(token_table=...)`` and
``semid.VocabConstraint(token_table=...)`` take. It needs no torch itself
(any object with the tokenizer's and the model's methods will do);
``semid.hf`` re-exports it.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

from ._semid import SemanticIndex, TextFormat, Trie

__all__ = ["add_sid_tokens"]


def add_sid_tokens(
    tokenizer: Any,
    model: Any,
    index: Union[SemanticIndex, Trie],
    text_format: Optional[TextFormat] = None,
) -> List[List[int]]:
    """Adds the SID tokens of ``index`` to ``tokenizer`` and resizes ``model``.

    Args:
        tokenizer: a HuggingFace tokenizer (``add_tokens``,
            ``convert_tokens_to_ids``, ``len``).
        model: the model whose input (and tied output) embeddings grow to
            ``len(tokenizer)`` (``resize_token_embeddings``); ``None`` to
            leave it alone.
        index: a ``semid.SemanticIndex`` or its ``semid.Trie``: the token
            count per position is its ``codebook_sizes`` (the suffix
            position included).
        text_format: how tokens are written (default
            ``TextFormat(id_len)``: ``<a_12>``).

    Returns:
        The token table: ``table[l][c]`` is the model token of code ``c``
        at position ``l``; pass it as ``token_table=``.

    Raises:
        ValueError: when a token was not added as one new, distinct token
            (it already meant something else, or the tokenizer split it).
    """
    trie = index.trie if isinstance(index, SemanticIndex) else index
    sizes = list(trie.codebook_sizes)
    fmt = text_format if text_format is not None else TextFormat(len(sizes))
    if fmt.id_len != len(sizes):
        raise ValueError(
            f"the text format has {fmt.id_len} positions; the IDs have {len(sizes)}"
        )
    tokens = fmt.vocabulary(sizes)
    tokenizer.add_tokens(tokens)
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(tokens)]
    if len(set(ids)) != len(ids):
        dup = next(t for t, i in zip(tokens, ids) if ids.count(i) > 1)
        raise ValueError(
            f"token {dup!r} did not become one distinct token (id {ids[tokens.index(dup)]}); "
            "was it split, or does the vocabulary already hold it with another meaning?"
        )
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and unk in ids:
        raise ValueError(f"token {tokens[ids.index(unk)]!r} maps to the unknown token")
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    table, at = [], 0
    for k in sizes:
        table.append(ids[at : at + k])
        at += k
    return table
