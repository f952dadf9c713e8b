"""Facts about the install and the store, for people and bug reports: users, stats, history, paths,
configuration and a health check. Each function returns plain data; the CLI renders it."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from . import __version__, global_memory
from .config import Settings
from .embed import load_embedder
from .errors import LogoError, NotFound
from .local_memory.store import open_store, store_for
from .records import format_time


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def users(settings: Settings) -> list[dict[str, Any]]:
    """Every user in the store with their record count and time span (largest history first); once global
    memory exists, also their diversity, community and dominant clusters as of its build."""
    store = open_store(settings)
    memory = global_memory.load(settings.global_dir) if global_memory.exists(settings.global_dir) else None
    rows = []
    for user, records, first, last in store.users():
        row: dict[str, Any] = {
            "user": user,
            "records": records,
            "first": format_time(first) if first is not None else None,
            "last": format_time(last) if last is not None else None,
        }
        profile = memory.users.get(user) if memory is not None else None
        if memory is not None:
            row |= {
                "history": profile.history if profile else None,
                "diversity": profile.diversity if profile else None,
                "community": profile.community if profile else None,
                "dominant": profile.dominant if profile else None,
                "rating_mean": profile.rating_mean if profile else None,
            }
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["records"], r["user"]))


def stats(settings: Settings) -> dict[str, Any]:
    store = open_store(settings)
    records = store.count()
    out: dict[str, Any] = {
        "home": str(settings.home),
        "records": records,
        "store": store.where,
        "store_bytes": None if settings.chroma_url else _size(settings.store_dir),
        "embedder": store.stamp().get("embedder"),
        "schema": store.stamp().get("logo_schema"),
        "model": settings.llm_url or settings.model_path(),
        "users": len(store.users()),
        "global": None,
    }
    if global_memory.exists(settings.global_dir):
        memory = global_memory.load(settings.global_dir)
        built_from = sum(p.history for p in memory.users.values())  # exact: the operator's view
        out["global"] = {
            "version": memory.version,
            "built": format_time(memory.built_at),
            "age_hours": round((time.time() - memory.built_at) / 3600, 2),
            "clusters": len(memory.clusters),
            "communities": len(memory.communities),
            "users": len(memory.users),
            "records": built_from,
            "records_released": memory.records if memory.release is not None else None,  # noisy: what views show
            "stale": built_from != records,
            "privacy": memory.privacy(brief=True),
            "bytes": _size(settings.global_dir),
        }
    return out


def history(settings: Settings, user: str, limit: int | None) -> list[dict[str, Any]]:
    records, _ = open_store(settings).user_history(user)
    if not records:
        raise NotFound(f"No records for user {user!r}.", "`logo users` lists the users in the store.")
    newest = sorted(records, key=lambda r: (r.timestamp is not None, r.timestamp or 0.0), reverse=True)
    return [r.to_json() for r in newest[:limit]]


def paths(settings: Settings) -> dict[str, Any]:
    def safe(fn: Any) -> str | None:
        try:
            return str(fn())
        except LogoError:
            return None

    return {
        "home": str(settings.home),
        "config": str(settings.config_file),
        "store": settings.chroma_url or str(settings.store_dir),
        "global": str(settings.global_dir),
        "lock": str(settings.home / "store.lock"),
        "model": safe(settings.model_path),
        "embedder": safe(settings.embedder_spec),
    }


def config(settings: Settings) -> dict[str, Any]:
    values = {
        "home": str(settings.home),
        "model": settings.model or "(packaged SmolLM2-135M)",
        "embedder": settings.embedder or "(packaged all-MiniLM-L6-v2)",
        "n_threads": settings.n_threads,
        "n_ctx": settings.n_ctx,
        "chroma_url": settings.chroma_url or "(none: the store is on disk under home)",
        "llm_url": settings.llm_url or "(none: the model runs in process)",
    }
    from .config import ENV, TOML_KEYS

    named = {"home": ("LOGO_HOME", None)} | {key: (ENV[key], TOML_KEYS[key]) for key in ENV}
    return {
        key: {"value": value, "source": settings.sources.get(key, "default")}
        | {"env": named[key][0], "config_key": named[key][1]}
        for key, value in values.items()
    }


def doctor(settings: Settings, unusable_home: LogoError | None = None) -> list[dict[str, Any]]:
    """Checks that the install works here; each check says ok or what failed. `unusable_home`: why the store
    lock could not be taken in LOGO_HOME, if it could not."""
    checks: list[dict[str, Any]] = []

    def check(name: str, fn: Any) -> None:
        started = time.perf_counter()
        try:
            detail = fn()
            checks.append(
                {"check": name, "ok": True, "detail": detail, "seconds": round(time.perf_counter() - started, 2)}
            )
        except Exception as exc:  # a health check reports every failure, whatever its type
            checks.append({"check": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"})

    def versions() -> dict[str, str]:
        names = (
            "chromadb",
            "sentence-transformers",
            "onnxruntime",
            "onnx",
            "llama_cpp_python",
            "torch",
            "typer",
            "scikit-learn",
        )
        out = {"logo": __version__, "python": platform.python_version(), "machine": platform.machine()}
        for name in names:
            try:
                out[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                out[name] = "missing"
        return out

    def embedder() -> str:
        model = load_embedder(settings.embedder_spec())
        vector = model.embed(["logo doctor"])
        return f"{model.id} via {model.runtime}, dim {vector.shape[1]}"

    def llm() -> str:
        from .llm import Usage, generator_for

        generator = generator_for(settings)
        usage = Usage()
        text = "".join(
            generator.stream(
                [{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0.0, seed=0, usage=usage
            )
        )
        return f"{generator.id}: generated {usage.completion_tokens} tokens ({text.strip()[:30]!r})"

    def store() -> str:
        if not store_for(settings).exists():
            return "no store yet (run `logo ingest`)"
        store = open_store(settings)
        count = store.count()
        return f"{count} records" + (" (Chroma's vector index was rebuilt after a crash)" if store.repaired else "")

    def memory() -> str:
        if not global_memory.versions.on_disk(settings.global_dir):
            return "no global memory yet (run `logo build-global`)"
        loaded = global_memory.load(settings.global_dir)
        return f"{loaded.version}: {len(loaded.clusters)} clusters"

    def home() -> str:
        if unusable_home is not None:
            raise unusable_home
        return str(settings.home)

    check("versions", versions)
    check("LOGO_HOME is a folder logo can write", home)
    check("embedder loads and embeds", embedder)
    check("llama.cpp loads the model and generates on this CPU", llm)
    check("store opens", store)
    def privacy() -> str:
        from .global_memory.release import budget_text

        if not global_memory.exists(settings.global_dir):
            return "no global memory yet"
        loaded = global_memory.load(settings.global_dir)
        released = loaded.privacy()
        if released.get("exact"):
            global_memory.versions.continued_release(settings.global_dir)  # the release it holds must be readable
            return "exact population statistics (built with --epsilon inf): they protect nobody"
        older = loaded.release is not None and "cluster_keywords" not in loaded.release.families
        return (
            f"differentially private population statistics: epsilon {released['epsilon']:g} per record, "
            f"{budget_text(released['epsilon_spent'])} spent at most by any record over "
            f"{len(released['ledger'])} build(s) "
            "(ledger: `logo global --ledger`)"
            + ("; released before keywords were: clusters show none until `logo build-global`" if older else "")
        )

    check("global memory loads", memory)
    check("population statistics are private", privacy)
    return checks
