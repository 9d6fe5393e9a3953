"""RangeTable: the calibrated (lo, hi) range of every activation tensor, as `ranges.json`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

SCHEMA = "compress-export/ranges@1"


@dataclass(frozen=True)
class RangeTable:
    method: str
    ranges: dict[str, tuple[float, float]]
    model_sha256: str = ""
    data_fingerprint: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    # The calibration histograms behind the ranges, kept in memory so other methods can be tried
    # per tensor without another pass; absent for a table read from a file.
    histograms: dict = field(default_factory=dict, compare=False, repr=False)
    statistics: str = field(default="", compare=False)  # "collected" in this run, "reused" from a statistics cache

    def __post_init__(self) -> None:
        for name, (lo, hi) in self.ranges.items():
            if not lo <= hi:
                raise ValueError(f"range of {name!r} is empty: ({lo}, {hi})")

    def with_ranges(self, method: str, updates: dict[str, tuple[float, float]]) -> RangeTable:
        return RangeTable(method, {**self.ranges, **updates}, self.model_sha256, self.data_fingerprint,
                          dict(self.skipped), self.histograms)

    def amax(self, name: str) -> float:
        lo, hi = self.ranges[name]
        return max(abs(lo), abs(hi))

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "method": self.method,
            "model_sha256": self.model_sha256,
            "data_fingerprint": self.data_fingerprint,
            "ranges": {name: [float(lo), float(hi)] for name, (lo, hi) in sorted(self.ranges.items())},
            "skipped": dict(sorted(self.skipped.items())),
        }

    @classmethod
    def from_dict(cls, data: dict) -> RangeTable:
        """A table from its JSON form; every value is checked, since a user may have written it."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            schema = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise UsageError(f"not a compress-export range table (schema {schema!r})")
        if not isinstance(data.get("ranges"), dict) or not isinstance(data.get("skipped", {}), dict):
            raise UsageError("'ranges' and 'skipped' must be objects keyed by tensor name")
        return cls(
            method=str(data.get("method", "")),
            ranges={name: _checked_range(name, value) for name, value in data["ranges"].items()},
            model_sha256=str(data.get("model_sha256", "")),
            data_fingerprint=str(data.get("data_fingerprint", "")),
            skipped={str(name): str(reason) for name, reason in data.get("skipped", {}).items()},
        )

    def to_trt_cache(self, version: int | None = None, algorithm: str | None = None,
                     tensors: list[str] | None = None) -> str:
        """TensorRT calibration cache text: scale = amax / 127 for each (or the given) tensor."""
        from .trt_cache import DEFAULT_ALGORITHM, DEFAULT_VERSION, make_cache

        names = tensors if tensors is not None else sorted(self.ranges)
        cache = make_cache({name: self.amax(name) for name in names}, version or DEFAULT_VERSION,
                           algorithm or DEFAULT_ALGORITHM)
        return cache.to_text()

    @classmethod
    def from_trt_cache(cls, text: str, source: str = "calibration cache") -> RangeTable:
        """Symmetric ranges (-amax, amax) from a TensorRT calibration cache."""
        from .trt_cache import parse_cache

        cache = parse_cache(text, source)
        return cls(method=f"trt-cache:{cache.algorithm}",
                   ranges={name: (-amax, amax) for name, amax in cache.amax().items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> RangeTable:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot read range table {path}: {exc}") from None


def _checked_range(name: str, value) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2 or any(isinstance(v, bool) for v in value):
        raise UsageError(f"range of {name!r} must be [lo, hi], not {value!r}")
    try:
        lo, hi = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise UsageError(f"range of {name!r} must be two numbers, not {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise UsageError(f"range of {name!r} must be finite with lo <= hi, not {value!r}")
    return lo, hi
