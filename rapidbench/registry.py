"""One small generic registry: name -> factory, filled by decorators and entry points.

Algorithms, tasks, samplers, trainers and models each get one instance. The registry is the only
path from a name to code: nothing in the core compares names. Built-in plugins register through the
same entry-point groups (`rapidbench.algorithms`, ...) that a third-party package would use, so the
built-ins get no special path either.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class RegistryError(ValueError):
    """A bad name: unknown, or registered twice. The message is one line naming the choices."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    origin: str  # module that registered it, for error messages


def _first_doc_line(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str):
        self.kind = kind  # "algorithm", "task", ...: used in messages
        self.group = group  # entry-point group, e.g. "rapidbench.algorithms"
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = False
        self._loading = False

    # -- registration ---------------------------------------------------------------------------
    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Decorator: `@ALGORITHMS.register("rapid")`. A duplicate name is an error."""

        def deco(obj: T) -> T:
            self.add(name, obj, description)
            return obj

        return deco

    def add(self, name: str, obj: T, description: str | None = None) -> None:
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {name!r}")
        origin = getattr(obj, "__module__", "?")
        if name in self._entries:
            prev = self._entries[name]
            if prev.obj is obj:  # the same object seen twice (module imported by two paths)
                return
            raise RegistryError(
                f"duplicate {self.kind} name '{name}': already registered by {prev.origin}, "
                f"again by {origin}"
            )
        self._entries[name] = Entry(name, obj, description or _first_doc_line(obj), origin)

    def unregister(self, name: str) -> None:
        """For tests that register throw-away entries."""
        self._entries.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        self.load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.kind} '{name}'; registered {self.kind}s: {choices}") from None

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._entries

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        self.load_plugins()
        for name in sorted(self._entries):
            yield self._entries[name]

    # -- plugins --------------------------------------------------------------------------------
    def load_plugins(self) -> None:
        """Load every entry point of this registry's group, once.

        An entry point naming a module (`pkg.algos`) is imported so its decorators run; one naming
        an object (`pkg.algos:MyAlgo`) registers that object under the entry point's name.
        """
        if self._plugins_loaded or self._loading:
            return
        self._loading = True
        try:
            for ep in metadata.entry_points(group=self.group):
                if ":" in ep.value:
                    obj = ep.load()
                    if not any(e.obj is obj for e in self._entries.values()):
                        self.add(ep.name, obj)
                else:
                    importlib.import_module(ep.value)
            self._plugins_loaded = True
        finally:
            self._loading = False

    def reset_plugins(self) -> None:
        """Forget that plugins were loaded (tests that install a plugin package mid-session)."""
        self._plugins_loaded = False


ALGORITHMS: Registry[Any] = Registry("algorithm", "rapidbench.algorithms")
TASKS: Registry[Any] = Registry("task", "rapidbench.tasks")
SAMPLERS: Registry[Any] = Registry("sampler", "rapidbench.samplers")
TRAINERS: Registry[Any] = Registry("trainer", "rapidbench.trainers")
MODELS: Registry[Any] = Registry("model", "rapidbench.models")

ALL_REGISTRIES: dict[str, Registry[Any]] = {
    "algorithms": ALGORITHMS,
    "tasks": TASKS,
    "samplers": SAMPLERS,
    "trainers": TRAINERS,
    "models": MODELS,
}

register_algorithm = ALGORITHMS.register
register_task = TASKS.register
register_sampler = SAMPLERS.register
register_trainer = TRAINERS.register
register_model = MODELS.register
