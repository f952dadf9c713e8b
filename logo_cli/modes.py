"""Memory modes: which memories an answer reads. `logo` is the product; the others are for comparison."""

from __future__ import annotations

from enum import StrEnum


class Memory(StrEnum):
    LOGO = "logo"  # both memories, weighed by the mediator
    LOCAL = "local"  # the user's own records only
    GLOBAL = "global"  # the population's only
    NONE = "none"  # no memory: the model alone (recommendations: the question's topic alone)

    @property
    def reads_local(self) -> bool:
        return self in (Memory.LOGO, Memory.LOCAL)

    @property
    def reads_global(self) -> bool:
        return self in (Memory.LOGO, Memory.GLOBAL)

    @property
    def reads_any(self) -> bool:
        return self != Memory.NONE


MEMORY_MODES = tuple(m.value for m in Memory)
