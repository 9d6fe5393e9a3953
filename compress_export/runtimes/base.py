"""The runner interface every runtime implements: a context manager with `infer(feeds)`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from ..errors import ExportError, UsageError


class Runner(ABC):
    name = "runner"

    def __init__(self) -> None:
        self._active = False
        self._inputs: list[str] = []
        self._outputs: list[str] = []

    @property
    def input_names(self) -> list[str]:
        return self._inputs

    @property
    def output_names(self) -> list[str]:
        return self._outputs

    def __enter__(self) -> Runner:
        self.activate()
        self._active = True
        return self

    def __exit__(self, *exc_info) -> None:
        self._active = False
        self.deactivate()

    def activate(self) -> None:
        """Load what is heavy; called on entering the context."""

    def deactivate(self) -> None:
        """Release it."""

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._active:
            raise RuntimeError(f"{self.name} runner used outside its context")
        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise UsageError(f"{self.name}: missing input(s) {', '.join(missing)}")
        return self.infer_impl({name: feeds[name] for name in self.input_names})

    @abstractmethod
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def by_reference_names(produced: dict, names: list[str]) -> dict:
    """The artifact's outputs under the original model's names: by name, or by position where the format
    renames them (a TFLite signature calls them output_0, output_1, ...)."""
    if all(name in produced for name in names):
        return produced
    if len(produced) == len(names):
        return dict(zip(names, produced.values(), strict=True))
    missing = [name for name in names if name not in produced]
    raise ExportError(f"the artifact lacks output(s) {', '.join(missing)}")
