"""A small name -> factory registry (timm's ``register_model`` / ``create_model`` pattern).

Used for recognizers, mask methods and datasets. Third-party plugins register through the
entry-point group given to the registry (e.g. ``bench.recognizers``); they are loaded lazily the
first time a name is looked up or listed, and so are entries from ``add_loader`` functions (the
models a user registered in their config file), so importing a package reads no user files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import BenchError, UnknownNameError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    info: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._loaders: list[Callable[[], object]] = []
        self._plugins_loaded = False

    def register(self, name: str, **info: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, **info)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., T], **info: Any) -> None:
        if name in self._entries and self._entries[name].factory is not factory:
            raise BenchError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, factory, info)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def add_loader(self, load: Callable[[], object]) -> None:
        """Run ``load()`` (which calls ``add``) at the first lookup or listing, after the plugins."""
        self._loaders.append(load)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # first: a loader that looks names up must not start this again
        for ep in metadata.entry_points(group=self.group) if self.group else ():
            ep.load()  # importing the module runs its @register decorators
        for load in self._loaders:
            load()

    def entry(self, name: str) -> Entry[T]:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def create(self, name: str, **kwargs: Any) -> T:
        return self.entry(name).factory(**kwargs)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        self._load_plugins()
        return iter([self._entries[n] for n in sorted(self._entries)])

    def parse_list(self, text: str) -> list[str]:
        """'a,b' -> ['a','b'] with every name checked; 'all' -> every registered name."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if names == ["all"]:
            return self.names()
        for n in names:
            self.entry(n)
        return names
