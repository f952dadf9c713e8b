"""The model's answer to a content-free rating question (contextual calibration's prior), kept on disk.

It depends only on the model, the prompt and the candidates, so it is computed once and reused by every
later process: a one-shot `logo ask` would otherwise evaluate a second prompt for every rating. The key holds
the model's id, its file's size and modification time (a replaced file is a new model), and a hash of the
rendered prompt and candidates. Written atomically; an unreadable file is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

MAX_ENTRIES = 64


class PriorCache:
    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(model_id: str, model_path: str, prompt: str, candidates: Sequence[str]) -> str:
        stamp = ""
        file = Path(model_path)
        if file.is_file():
            info = file.stat()
            stamp = f"{info.st_size}:{info.st_mtime_ns}"
        digest = hashlib.sha256("\x00".join([prompt, *candidates]).encode()).hexdigest()[:16]
        return f"{model_id}|{stamp}|{digest}"

    def _read(self) -> dict[str, list[float]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> list[float] | None:
        found = self._read().get(key)
        if isinstance(found, list) and all(isinstance(x, int | float) for x in found):
            return [float(x) for x in found]
        return None

    def put(self, key: str, values: list[float]) -> None:
        data = self._read()
        data[key] = values
        while len(data) > MAX_ENTRIES:  # oldest first: dicts keep insertion order
            data.pop(next(iter(data)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(orjson.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home only costs the next process the same computation
