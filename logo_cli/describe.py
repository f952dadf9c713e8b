"""Optional one-line cluster descriptions written by the model (`build-global --describe`).

Built only from a cluster's keywords and shared items (never from anyone's text), and cached by their hash
and the model, so a rebuild with the same clusters asks the model nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from .config import Settings
from .global_memory import Cluster
from .llm import Generator, Usage, generator_for

PROMPT = "In one short sentence, name the shared interest of people whose notes mention: {terms}."


class Describer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache_path: Path = settings.home / "descriptions.json"
        self.cache: dict[str, str] = orjson.loads(self.cache_path.read_bytes()) if self.cache_path.is_file() else {}
        self._generator: Generator | None = None

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = generator_for(self.settings)
        return self._generator

    def __call__(self, cluster: Cluster) -> str:
        terms = ", ".join([*cluster.keywords[:6], *(item for item, _ in cluster.top_items[:3])])
        settings = self.settings
        source = f"{settings.llm_url} {settings.model}" if settings.llm_url else settings.model_path()
        key = hashlib.blake2b(f"{source}\x1f{terms}".encode(), digest_size=12).hexdigest()
        if key not in self.cache:
            messages = [{"role": "user", "content": PROMPT.format(terms=terms)}]
            text = "".join(self.generator.stream(messages, max_tokens=32, temperature=0.0, seed=0, usage=Usage()))
            self.cache[key] = text.strip().splitlines()[0] if text.strip() else terms
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_bytes(orjson.dumps(self.cache))
        return self.cache[key]
