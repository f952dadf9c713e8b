"""Generators: the contract (`base`), and the backends behind it: the in-process llama.cpp model (`llama`),
an OpenAI-compatible server (`remote`) and a fake for tests (`fake`).

`generator_for(settings)` is the one place a backend is chosen, and each is loaded once per process.
Backends import only `base` (and `gguf`, the llama.cpp plumbing two of them share); the ones that pull in
heavy packages (llama_cpp, httpx) are imported here lazily, so `import logo_cli.llm` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    CHATML,
    FAKE_MODEL,
    REPEAT_PENALTY,
    STOP,
    ChatTemplate,
    Generator,
    Message,
    Score,
    Usage,
    compile_template,
    fit_context,
)
from .fake import FakeGenerator
from .gguf import GGUF_MAGIC, check_gguf, close_at_exit

if TYPE_CHECKING:
    from ..config import Settings
    from .llama import LlamaCppGenerator
    from .remote import RemoteGenerator, normalize_url

__all__ = [
    "CHATML",
    "FAKE_MODEL",
    "GGUF_MAGIC",
    "REPEAT_PENALTY",
    "STOP",
    "ChatTemplate",
    "FakeGenerator",
    "Generator",
    "LlamaCppGenerator",
    "Message",
    "RemoteGenerator",
    "Score",
    "Usage",
    "check_gguf",
    "close_at_exit",
    "compile_template",
    "fit_context",
    "generator_for",
    "load_generator",
    "load_remote",
    "normalize_url",
]

_LAZY = {"LlamaCppGenerator": ".llama", "RemoteGenerator": ".remote", "normalize_url": ".remote"}


def __getattr__(name: str) -> Any:
    """The backends' public names, imported on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CACHE: dict[tuple[object, ...], Generator] = {}


def generator_for(settings: Settings) -> Generator:
    """The generator the settings name: an OpenAI-compatible server when `llm_url` is set, otherwise the GGUF
    (or `fake`) in process. Loaded once per process."""
    if settings.llm_url:
        return load_remote(settings)
    return load_generator(settings.model_path(), n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def load_generator(path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> Generator:
    """`fake` for the test generator, otherwise a GGUF path run in process. Loaded once per process."""
    key = ("local", path, n_ctx, n_threads)
    if key not in _CACHE:
        if path == FAKE_MODEL:
            _CACHE[key] = FakeGenerator()
        else:
            from .llama import LlamaCppGenerator

            _CACHE[key] = LlamaCppGenerator(path, n_ctx=n_ctx, n_threads=n_threads)
    return _CACHE[key]


def load_remote(settings: Settings) -> Generator:
    """The server `settings.llm_url` names. One per (url, model, n_ctx) per process; nothing is sent until
    the first call that needs the server."""
    from .remote import RemoteGenerator, normalize_url

    key = ("remote", normalize_url(settings.llm_url), settings.model, settings.n_ctx)
    if key not in _CACHE:
        _CACHE[key] = RemoteGenerator.from_settings(settings)
    return _CACHE[key]
