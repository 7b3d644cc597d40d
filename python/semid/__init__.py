"""semid: semantic-ID tokenization and generative retrieval.

A thin, typed Python front over the semid Rust crate. Embeddings go in as
numpy arrays (float32 or float16, n x d), codes come out as uint16 arrays
(n x L). Fit, encode, decode and search release the GIL.

    >>> import numpy as np, semid
    >>> x = np.random.default_rng(0).standard_normal((2000, 32), dtype=np.float32)
    >>> q, report = semid.RqKMeans.fit(x, levels=2, k=16, seed=0)
    >>> codes = q.encode(x)          # uint16, 2000 x 2
    >>> index, ids = semid.SemanticIndex.build(q, x)
    >>> hits = index.search_embeddings(x[:5], beam=8, k=3)
"""

from ._semid import (
    Beams,
    FormatError,
    Fsq,
    FsqAutoencoder,
    Hits,
    KMeans,
    ProductQuantizer,
    Quantizer,
    ResidualFsq,
    RqKMeans,
    RqVae,
    SemanticIndex,
    TextFormat,
    Trie,
    VocabConstraint,
    __version__,
    evaluate,
)

__all__ = [
    "Beams",
    "FormatError",
    "Fsq",
    "FsqAutoencoder",
    "Hits",
    "KMeans",
    "ProductQuantizer",
    "Quantizer",
    "ResidualFsq",
    "RqKMeans",
    "RqVae",
    "SemanticIndex",
    "TextFormat",
    "Trie",
    "VocabConstraint",
    "__version__",
    "evaluate",
]
