"""Frozen data types that flow through the pipeline. No framework imports here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

Dim = int | str

_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


def dtype_from_name(name: str) -> np.dtype:
    from .errors import UsageError

    try:
        return np.dtype(_DTYPES[name])
    except KeyError:
        raise UsageError(f"unknown dtype {name!r}; use one of {', '.join(_DTYPES)}") from None


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output. A dimension is an int, or a name when it is dynamic."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def np_dtype(self) -> np.dtype:
        return dtype_from_name(self.dtype)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict) -> TensorSpec:
        return cls(data["name"], tuple(data["shape"]), data["dtype"])

    @classmethod
    def parse(cls, text: str) -> TensorSpec:
        """Parse `name:1x3x224x224[:dtype]`. Dim 0 is the batch and stays dynamic;
        a non-numeric dim (`input_ids:1xseq:int64`) is dynamic too."""
        from .errors import UsageError

        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise UsageError(f"--input {text!r}: expected name:1x3x224x224[:dtype]")
        dims: list[Dim] = []
        for index, token in enumerate(parts[1].split("x")):
            if re.fullmatch(r"\d+", token):
                dims.append("batch" if index == 0 else int(token))
            elif re.fullmatch(r"[A-Za-z_]\w*", token):
                dims.append(token)
            else:
                raise UsageError(f"--input {text!r}: bad dimension {token!r}")
        dtype = parts[2] if len(parts) == 3 else "float32"
        dtype_from_name(dtype)
        return cls(parts[0], tuple(dims), dtype)


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantize: the calibrator and which nodes are eligible."""

    method: str = "entropy"
    percentile: float = 99.99
    num_bins: int = 2048
    per_channel: bool = True
    include_ops: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = ()
    exclude_nodes: str | None = None

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "percentile": self.percentile,
            "num_bins": self.num_bins,
            "per_channel": self.per_channel,
            "include_ops": list(self.include_ops),
            "exclude_ops": list(self.exclude_ops),
            "exclude_nodes": self.exclude_nodes,
        }


@dataclass(frozen=True)
class Artifact:
    """One file a target produced, with what is needed to run it."""

    target: str
    path: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    runtime: str = "onnxruntime"
    notes: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)  # target facts for report and manifest (engine_built, ...)
