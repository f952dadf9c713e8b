"""Local GGUF files through llama-cpp-python, shared by the in-process backend (`llama.py`) and the remote
backend's tokenizer (`remote/tokenizers.py`), so neither backend imports the other: the file check, the
one import guard, loading, and freeing the model before interpreter shutdown.

llama_cpp is imported only inside `load_llama`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError

GGUF_MAGIC = b"GGUF"


def check_gguf(path: str) -> None:
    """Fail before any work when the file is missing or is not a GGUF."""
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"{path}: no such model file.", "Pass --model PATH to a local .gguf file.")
    with file.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path}: not a GGUF file.", "llama.cpp needs a .gguf model; convert or download one.")


def load_llama(path: str, *, failure: str, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path=path, verbose=False, **kwargs)`, freed at exit. ModelError when
    llama-cpp-python is missing, or `{path}: {failure}: {reason}` when llama.cpp cannot load the file."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("llama-cpp-python is not installed.", "Run `make setup`.") from exc
    try:
        llm = Llama(model_path=path, verbose=False, **kwargs)
    except Exception as exc:
        raise ModelError(f"{path}: {failure}: {exc}") from exc
    close_at_exit(llm)
    return llm


def close_at_exit(llm: Any) -> None:
    """Free a llama.cpp model before interpreter shutdown: left to the garbage collector then,
    llama-cpp-python's `__del__` runs after its C bindings are gone and prints a TypeError."""
    import atexit
    import weakref

    ref = weakref.ref(llm)

    def close() -> None:
        obj = ref()
        if obj is not None:
            obj.close()

    atexit.register(close)
