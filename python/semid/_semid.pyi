"""Type stubs of the Rust extension module semid._semid."""

from os import PathLike
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
StrPath = Union[str, PathLike]
Report = Dict[str, Any]

class FormatError(ValueError):
    """A model file is not a semid file, has another version or kind, is
    truncated or damaged."""

class Quantizer:
    """A fitted quantizer of any kind: embeddings (n x d) in, codes (n x L,
    uint16) out."""

    @property
    def kind(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def levels(self) -> int: ...
    @property
    def codebook_sizes(self) -> List[int]: ...
    def encode(self, x: ArrayLike, threads: Optional[int] = None) -> npt.NDArray[np.uint16]: ...
    def decode(self, codes: ArrayLike, threads: Optional[int] = None) -> npt.NDArray[np.float32]: ...
    def reconstruction_mse(self, x: ArrayLike, threads: Optional[int] = None) -> float: ...
    def save(self, path: StrPath) -> None: ...
    @staticmethod
    def load(path: StrPath) -> "Quantizer": ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> "Quantizer": ...

class KMeans(Quantizer):
    @staticmethod
    def fit(
        x: ArrayLike,
        k: int = 256,
        *,
        seed: int = 0,
        max_iter: Optional[int] = None,
        threads: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> Tuple["KMeans", Report]: ...

class RqKMeans(Quantizer):
    @staticmethod
    def fit(
        x: ArrayLike,
        levels: int = 3,
        k: int = 256,
        *,
        codebook_sizes: Optional[Sequence[int]] = None,
        seed: int = 0,
        threads: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> Tuple["RqKMeans", Report]: ...
    @property
    def codebooks(
        self,
    ) -> Union[npt.NDArray[np.float32], List[npt.NDArray[np.float32]]]: ...

class RqVae(Quantizer):
    @staticmethod
    def fit(
        x: ArrayLike,
        levels: int = 3,
        k: int = 256,
        *,
        codebook_sizes: Optional[Sequence[int]] = None,
        seed: int = 0,
        epochs: Optional[int] = None,
        threads: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
        warm_start: Optional["RqKMeans"] = None,
    ) -> Tuple["RqVae", List[Report]]: ...

class ProductQuantizer(Quantizer):
    @staticmethod
    def fit(
        x: ArrayLike,
        m: int = 4,
        k: int = 256,
        *,
        opq: bool = False,
        seed: int = 0,
        threads: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> Tuple["ProductQuantizer", Report]: ...
    @property
    def rotation(self) -> Optional[npt.NDArray[np.float32]]: ...

class Fsq(Quantizer):
    def __init__(self, levels_per_dim: Sequence[int], mode: str = "default") -> None: ...

class ResidualFsq(Quantizer):
    def __init__(self, levels_per_dim: Sequence[int], levels: int) -> None: ...

class FsqAutoencoder(Quantizer):
    @staticmethod
    def fit(
        x: ArrayLike,
        levels_per_dim: Sequence[int] = ...,
        *,
        seed: int = 0,
        epochs: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> Tuple["FsqAutoencoder", List[Report]]: ...

class Beams:
    """The live beams of one decoding step, handed to a scorer."""

    level: int
    codebook_size: int
    n_queries: int
    prefixes: npt.NDArray[np.uint16]
    queries: npt.NDArray[np.uint32]
    parents: npt.NDArray[np.uint32]
    def __len__(self) -> int: ...

class Hits:
    """Top-k hits per query, padded: items -1 and scores -inf past counts."""

    items: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    ids: npt.NDArray[np.uint16]
    counts: npt.NDArray[np.int64]
    def to_lists(self) -> List[List[int]]: ...
    def __len__(self) -> int: ...

class TextFormat:
    """Semantic IDs as language-model text tokens: <a_12><b_34><c_5><d_0>."""

    def __init__(self, id_len: int) -> None: ...
    @property
    def id_len(self) -> int: ...
    def format(self, id: Sequence[int]) -> str: ...
    def parse(self, text: str) -> List[int]: ...
    def token(self, level: int, code: int) -> str: ...
    def vocabulary(self, codebook_sizes: Sequence[int]) -> List[str]: ...

class Trie:
    """The prefix trie of valid semantic IDs."""

    @staticmethod
    def from_ids(ids: ArrayLike, codebook_sizes: Optional[Sequence[int]] = None) -> "Trie": ...
    @property
    def id_len(self) -> int: ...
    @property
    def codebook_sizes(self) -> List[int]: ...
    def __len__(self) -> int: ...
    def __contains__(self, id: Sequence[int]) -> bool: ...
    def allowed(self, prefix: Sequence[int]) -> npt.NDArray[np.uint16]: ...
    def items(self, prefix: Sequence[int]) -> npt.NDArray[np.uint32]: ...
    def stats(self) -> Dict[str, Any]: ...

Scorer = Callable[[Beams], ArrayLike]

class SemanticIndex:
    """A quantizer, the item <-> semantic-ID map and the trie, as one artifact."""

    @staticmethod
    def build(
        quantizer: Quantizer,
        x: ArrayLike,
        policy: str = "append_suffix",
        *,
        capacity: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> Tuple["SemanticIndex", Report]: ...
    def insert(self, items: Sequence[int], x: ArrayLike, threads: Optional[int] = None) -> Report: ...
    def encode(self, x: ArrayLike, threads: Optional[int] = None) -> npt.NDArray[np.uint16]: ...
    def search(
        self, scorer: Scorer, n_queries: int, *, beam: int = 20, k: int = 10, renormalize: bool = False
    ) -> Hits: ...
    def search_embeddings(self, queries: ArrayLike, *, beam: int = 20, k: int = 10) -> Hits: ...
    def id_of(self, item: int) -> Optional[npt.NDArray[np.uint16]]: ...
    def ids(self) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint16]]: ...
    def __len__(self) -> int: ...
    @property
    def quantizer(self) -> Quantizer: ...
    @property
    def trie(self) -> Trie: ...
    def save(self, path: StrPath) -> None: ...
    @staticmethod
    def load(path: StrPath) -> "SemanticIndex": ...
    @staticmethod
    def open(path: StrPath, check: str = "structure") -> "SemanticIndex": ...
    def verify(self) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> "SemanticIndex": ...

class VocabConstraint:
    """Valid semantic IDs as token sequences of a language model."""

    def __init__(
        self,
        trie: Trie,
        vocab_size: int,
        *,
        offsets: Optional[Sequence[int]] = None,
        token_table: Optional[Sequence[Sequence[int]]] = None,
        eos_token_id: Optional[int] = None,
    ) -> None: ...
    @property
    def id_len(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    def apply(
        self, input_ids: npt.NDArray[np.int64], prompt_length: int, scores: npt.NDArray[np.float32]
    ) -> None: ...
    def mask(self, input_ids: npt.NDArray[np.int64], prompt_length: int) -> npt.NDArray[np.bool_]: ...

def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Iterable[str],
    *,
    queries: str = "both",
    tie_break: str = "item_desc",
) -> Dict[str, Dict[str, float]]: ...
