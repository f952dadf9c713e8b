"""The ONNX runtime of the default embedder: same vectors and id as sentence-transformers, export made once
(atomically, reused, redone when damaged), and a fast path that imports neither torch nor sentence_transformers.

Every test works in a temporary LOGO_CACHE. The export (torch + onnx, ~15 s) is made once per module, by two
processes at once, which is also the concurrency test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from logo_cli import embed, onnx_export
from logo_cli.errors import ModelError, UsageError

pytestmark = pytest.mark.real

_missing = [
    m for m in ("onnxruntime", "tokenizers", "onnx", "sentence_transformers") if not importlib.util.find_spec(m)
]
if _missing:  # checked without importing them: collecting this file stays cheap
    pytest.skip(f"needs {', '.join(_missing)}", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent

LONG = " ".join(
    f"Entry {i}: rewatched a slow-burn thriller, cooked shakshuka with too much cumin, planned a rainy trip to Porto."
    for i in range(40)
)
TEXTS = [
    "What should I watch this weekend?",
    "Suggest a quick weeknight dinner for two, nothing fancy.",
    "hi",
    "a",
    "",
    "   ",
    "!!!???...",
    "12345 67890",
    "The Thing (1982) — practical effects will never be beaten, sorry CGI people",
    "rewatched The Thing for maybe the 15th time. the blood test scene still makes my palms sweat.",
    "Crème brûlée at a café in Montréal; the naïve façade of the hôtel",
    "東京で寿司を食べました。とても美味しかったです。",
    "我喜欢看科幻电影,尤其是星际穿越。",
    "Привет! Какой фильм посмотреть сегодня вечером?",
    "مرحبا، ما هو أفضل مطعم في المدينة؟",
    "Γειά σου κόσμε, ένα ταξίδι στην Αθήνα",
    "🍣🍜🎬✈️ emoji only-ish 😀",
    "def embed(texts): return model.encode(texts)  # code in a record",
    "SELECT * FROM ratings WHERE user = 'maya' AND rating >= 4;",
    "https://example.com/movies?id=42&sort=desc",
    "ALL CAPS SHOUTING ABOUT A TERRIBLE SEQUEL",
    "tabs\tand\nnewlines\r\nin the middle",
    "I rated Heat 5 stars, Vertigo 4, Psycho 3.5 and Jaws 2.",
    "Lisbon by train, a hotel near the beach, walked the old town, took the flight home from Porto.",
    "Tried the recipe for risotto, garlic and basil in the sauce, dinner from the oven.",
    "A 135M model cannot be trusted to invent facts; it can choose among, order and phrase them.",
    "word " * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "Was ist der beste Film von Fritz Lang? Metropolis oder M?",
    "¿Cuál es la mejor paella de Valencia?",
    LONG,
    LONG + " And one more sentence past the cut, which truncation drops.",
    "x" * 3000,
]


def _default_folder() -> Path:
    from logo_cli.config import default_embedder_path

    try:
        return default_embedder_path()
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def folder() -> Path:
    return _default_folder()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """One export for the module, made by two processes at the same time into an empty cache."""
    cache = tmp_path_factory.mktemp("logo-cache")
    env = {**os.environ, "LOGO_CACHE": str(cache)}
    command = [sys.executable, "-m", "logo_cli.onnx_export", str(folder)]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1, paths  # both report the same file
    onnx_file = Path(paths.pop())
    assert onnx_file.is_file()
    # Only the finished export: no temporary folders or files left by the process that lost the race.
    assert [p.name for p in (cache / "onnx").iterdir()] == [onnx_file.parent.name]
    assert sorted(p.name for p in onnx_file.parent.iterdir()) == sorted([onnx_export.DATA_FILE, onnx_export.ONNX_FILE])
    return cache


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test: its own LOGO_CACHE (tests that want the shared export point at it), no cached embedders."""
    monkeypatch.setenv("LOGO_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(embed.RUNTIME_ENV, raising=False)
    monkeypatch.setattr(embed, "_CACHE", {})


@pytest.fixture
def use_shared(monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    monkeypatch.setenv("LOGO_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture
def private_copy(monkeypatch: pytest.MonkeyPatch, shared_cache: Path, tmp_path: Path) -> Path:
    """A copy of the shared export in this test's own cache, free to damage. Returns the export's folder."""
    cache = tmp_path / "cache"
    shutil.copytree(shared_cache, cache)
    monkeypatch.setenv("LOGO_CACHE", str(cache))
    (export,) = (cache / "onnx").iterdir()
    return export


@pytest.fixture(scope="module")
def reference(folder: Path) -> np.ndarray:
    return embed.SentenceTransformerEmbedder(str(folder)).embed(TEXTS)


def test_vectors_and_id_match_sentence_transformers(use_shared: Path, folder: Path, reference: np.ndarray) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()  # the file itself says 128; sentence-transformers cuts at 256
    pieces = len(tokenizer.encode(LONG).ids)
    assert pieces > 256  # the long texts exercise truncation at max_seq_length
    assert len(TEXTS) >= 30

    model = embed.OnnxEmbedder(str(folder))
    torch_model = embed.SentenceTransformerEmbedder(str(folder))
    assert model.id == torch_model.id == "sentence-transformers:all-MiniLM-L6-v2"
    assert model.dim == torch_model.dim == 384
    assert model.runtime == "onnxruntime"
    vectors = model.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * reference, axis=1)
    assert cosines.min() >= 1 - 1e-5, {TEXTS[i][:40]: float(cosines[i]) for i in np.argsort(cosines)[:3]}
    # Truncated: past 256 word-pieces, more text changes nothing.
    assert float(vectors[-3] @ vectors[-2]) >= 1 - 1e-6


def test_batching_keeps_order(use_shared: Path, folder: Path, reference: np.ndarray) -> None:
    """Sorting by length into small batches of different widths returns rows in the caller's order."""
    model = embed.OnnxEmbedder(str(folder), batch_size=4)
    order = np.random.default_rng(0).permutation(len(TEXTS))
    vectors = model.embed([TEXTS[i] for i in order])
    assert np.sum(vectors * reference[order], axis=1).min() >= 1 - 1e-5
    one = model.embed([TEXTS[0]])
    assert float(one[0] @ reference[0]) >= 1 - 1e-5
    assert model.embed([]).shape == (0, 384)


def test_export_is_reused_not_redone(use_shared: Path, folder: Path) -> None:
    onnx_file = onnx_export.cached_onnx(folder)
    before = (onnx_file.stat().st_mtime_ns, (onnx_file.parent / onnx_export.DATA_FILE).stat().st_mtime_ns)
    exports = onnx_export.EXPORTS
    for _ in range(2):
        model = embed.OnnxEmbedder(str(folder))
        model.embed(["reuse"])
    auto = embed.load_embedder(str(folder))
    assert auto.runtime == "onnxruntime"
    assert exports == onnx_export.EXPORTS
    after = (onnx_file.stat().st_mtime_ns, (onnx_file.parent / onnx_export.DATA_FILE).stat().st_mtime_ns)
    assert after == before


def test_cache_key_follows_the_weights(tmp_path: Path, folder: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    key = onnx_export.cache_key(copy)
    assert onnx_export.cache_key(copy) == key
    os.utime(copy / "model.safetensors", ns=(1, 1))  # same bytes, other mtime: treated as new weights
    assert onnx_export.cache_key(copy) != key
    assert onnx_export.cache_dir(folder).parent == tmp_path / "empty-cache" / "onnx"  # LOGO_CACHE is honoured


def test_fast_path_imports_neither_torch_nor_sentence_transformers(use_shared: Path, folder: Path) -> None:
    code = (
        "import sys, logo_cli.embed as e\n"
        f"m = e.load_embedder({str(folder)!r})\n"  # auto: the cached export exists, so ONNX
        "v = m.embed(['What should I watch this weekend?'])\n"
        "assert v.shape == (1, 384) and m.runtime == 'onnxruntime', m.runtime\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
        "assert 'transformers' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"  # nothing else on stdout


def test_importing_embed_is_cheap() -> None:
    code = (
        "import sys, logo_cli.embed, logo_cli.onnx_export\n"
        "heavy = {'torch', 'sentence_transformers', 'onnxruntime', 'tokenizers', 'transformers', 'onnx'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_damaged_export_is_made_again(private_copy: Path, folder: Path, reference: np.ndarray) -> None:
    onnx_file = private_copy / onnx_export.ONNX_FILE
    onnx_file.write_bytes(b"\x00not an onnx graph" * 100)
    exports = onnx_export.EXPORTS
    model = embed.OnnxEmbedder(str(folder))
    vectors = model.embed(TEXTS[:5])
    assert exports + 1 == onnx_export.EXPORTS
    assert np.sum(vectors * reference[:5], axis=1).min() >= 1 - 1e-5
    assert onnx_file.stat().st_size > 1000
    assert sorted(p.name for p in private_copy.parent.iterdir()) == [private_copy.name]  # nothing left over


def test_damaged_export_falls_back_when_it_cannot_be_redone(
    private_copy: Path, folder: Path, reference: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(private_copy / onnx_export.DATA_FILE, "r+b") as fh:
        fh.truncate(1000)  # weights cut short

    def broken_export(spec: onnx_export.OnnxSpec, dest: Path) -> None:
        dest.write_bytes(b"half a graph")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "_export_graph", broken_export)
    auto = embed.load_embedder(str(folder))
    assert isinstance(auto, embed.AutoEmbedder)
    vectors = auto.embed(TEXTS[:3])  # no exception: sentence-transformers took over
    assert auto.runtime == "sentence-transformers"
    assert auto.id == "sentence-transformers:all-MiniLM-L6-v2"
    assert np.sum(vectors * reference[:3], axis=1).min() >= 1 - 1e-5
    # The damaged export is gone and the failure remembered: the next process goes straight to torch.
    assert [p.name for p in private_copy.parent.iterdir()] == [private_copy.name + "." + onnx_export.FAILED_FILE]
    monkeypatch.setattr(embed, "_CACHE", {})
    assert isinstance(embed.load_embedder(str(folder)), embed.SentenceTransformerEmbedder)


def test_failed_export_is_atomic_and_remembered(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_export(spec: onnx_export.OnnxSpec, dest: Path) -> None:
        dest.write_bytes(b"half a graph")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "_export_graph", broken_export)
    with pytest.raises(ModelError, match="exporter crashed"):
        onnx_export.ensure_onnx(folder)
    assert not onnx_export.cached_onnx(folder).exists()
    leftovers = [p.name for p in onnx_export.cache_dir(folder).parent.iterdir()]
    assert leftovers == [onnx_export.cache_dir(folder).name + "." + onnx_export.FAILED_FILE]  # only the marker
    assert "exporter crashed" in (onnx_export.failed_reason(folder) or "")
    # Next time auto goes straight to sentence-transformers, and forcing ONNX says why it cannot.
    assert isinstance(embed.load_embedder(str(folder)), embed.SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="earlier ONNX export failed"):
        embed.load_embedder(str(folder), "onnx").embed(["x"])


def test_runtime_choice(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(embed.load_embedder(str(folder), "torch"), embed.SentenceTransformerEmbedder)
    assert isinstance(embed.load_embedder(str(folder), "onnx"), embed.OnnxEmbedder)
    monkeypatch.setenv(embed.RUNTIME_ENV, "torch")
    assert isinstance(embed.load_embedder(str(folder)), embed.SentenceTransformerEmbedder)
    monkeypatch.setenv(embed.RUNTIME_ENV, "ONNX")
    assert isinstance(embed.load_embedder(str(folder)), embed.OnnxEmbedder)
    monkeypatch.setenv(embed.RUNTIME_ENV, "cuda")
    with pytest.raises(UsageError, match="LOGO_EMBED_RUNTIME"):
        embed.load_embedder(str(folder))
    assert embed.load_embedder("fake:64", "auto").runtime == "fake"


@pytest.fixture
def cls_pooled(tmp_path: Path, folder: Path) -> Iterator[Path]:
    """The same weights with CLS pooling: a model the ONNX path does not reproduce."""
    copy = tmp_path / "cls-model"
    shutil.copytree(folder, copy)
    pooling = json.loads((copy / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    yield copy


def test_unsupported_folder_uses_sentence_transformers(cls_pooled: Path) -> None:
    with pytest.raises(onnx_export.UnsupportedModel, match="pooling"):
        onnx_export.onnx_spec(cls_pooled)
    assert isinstance(embed.load_embedder(str(cls_pooled)), embed.SentenceTransformerEmbedder)
    with pytest.raises(ModelError):
        embed.load_embedder(str(cls_pooled), "onnx")
