"""Calibration and validation data: `.npz` files whose keys are input names (+ optional `label`), or `.npy`
files (and `.npz` files with one array under another key) for single-input models.

Files are read one at a time and sliced into batches, so memory follows the batch size,
not the number of samples. Batches may differ in size and sequence length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..specs import TensorSpec
from ..util.hashing import sha256_file
from .array_files import data_files, read_arrays
from .labels import check_labels, class_ids
from .layout import batch_axis, sample_major

LABEL_KEY = "label"
MAX_RANDOM_BYTES = 4 << 30


@dataclass(frozen=True)
class Shard:
    path: Path
    indices: tuple[int, ...]
    renamed: tuple[tuple[str, str], ...] = ()  # (input name, the key that holds it in this file)


@dataclass(frozen=True)
class CalibrationData:
    """Re-iterable batches of real (or explicitly random) samples."""

    shards: tuple[Shard, ...]
    specs: tuple[TensorSpec, ...]
    batch_size: int = 16
    has_labels: bool = False
    source: str = ""
    synthetic: bool = False
    random_seed: int = 0
    one_hot_labels: bool = False
    whole_batches: bool = False  # a model with a fixed batch size takes no smaller last batch

    def __len__(self) -> int:
        return sum(len(shard.indices) for shard in self.shards)

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for shard in self.shards:
            digest.update(sha256_file(shard.path).encode())
            digest.update(np.asarray(shard.indices, dtype=np.int64).tobytes())
        digest.update(f"synthetic={self.synthetic},seed={self.random_seed}".encode())
        return digest.hexdigest()

    def batches(self, labels: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Yield feeds (and `label` when asked and present), shard by shard."""
        for shard in self.shards:
            arrays = read_arrays(shard.path)
            arrays.update({name: arrays[key] for name, key in shard.renamed})
            keys = self.input_names + ([LABEL_KEY] if labels and self.has_labels else [])
            for start in range(0, len(shard.indices), self.batch_size):
                rows = np.asarray(shard.indices[start : start + self.batch_size])
                if self.whole_batches and len(rows) < self.batch_size:
                    break
                batch = {key: _cast(self._rows(arrays[key], key, rows), self._dtype(key)) for key in keys}
                if LABEL_KEY in batch:
                    batch[LABEL_KEY] = class_ids(batch[LABEL_KEY])
                yield batch

    def _rows(self, array: np.ndarray, key: str, rows: np.ndarray) -> np.ndarray:
        """The batch's rows, sample-major (layout.py); a scalar input given once repeats for each row."""
        spec = next((spec for spec in self.specs if spec.name == key), None)
        if spec is None:
            return array[rows]
        if spec.rank == 0 and array.ndim == 0:
            return np.full(len(rows), array, dtype=array.dtype)
        return sample_major(array, spec.shape)[rows]

    def _dtype(self, key: str) -> np.dtype | None:
        for spec in self.specs:
            if spec.name == key:
                return spec.np_dtype
        return None

    def take(self, count: int) -> CalibrationData:
        """The first `count` samples."""
        shards, left = [], count
        for shard in self.shards:
            if left <= 0:
                break
            shards.append(replace(shard, indices=shard.indices[:left]))
            left -= len(shard.indices[:left])
        return replace(self, shards=tuple(shards))

    def split(self, holdout_fraction: float, seed: int) -> tuple[CalibrationData, CalibrationData]:
        """A seeded split of every file into (calibration, held-out) samples."""
        rng = np.random.default_rng(seed)
        keep, hold = [], []
        for shard in self.shards:
            count = len(shard.indices)
            held = int(round(count * holdout_fraction)) if count > 1 else 0
            chosen = set(rng.choice(count, size=held, replace=False).tolist()) if held else set()
            hold.append(replace(shard, indices=tuple(i for n, i in enumerate(shard.indices) if n in chosen)))
            keep.append(replace(shard, indices=tuple(i for n, i in enumerate(shard.indices) if n not in chosen)))
        return (
            replace(self, shards=tuple(s for s in keep if s.indices)),
            replace(self, shards=tuple(s for s in hold if s.indices)),
        )

    def describe(self) -> dict:
        described = {
            "source": self.source,
            "samples": len(self),
            "files": len(self.shards),
            "synthetic": self.synthetic,
            "fingerprint": self.fingerprint,
        }
        renamed = sorted({f"{key} -> {name}" for shard in self.shards for name, key in shard.renamed})
        if renamed:
            described["renamed"] = renamed  # a single-input model fed from a file with one array under another key
        if self.one_hot_labels:
            described["labels"] = "one-hot rows, read as class ids by argmax"
        return described


def batch_rows(feeds: dict[str, np.ndarray]) -> int:
    """The number of samples in a batch of feeds."""
    return len(next(iter(feeds.values())))


def _cast(array: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    if dtype is None or array.dtype == dtype:
        return array
    return array.astype(dtype)


def _compatible(data: np.dtype, wanted: np.dtype) -> bool:
    if data == wanted:
        return True
    kinds = {"f": "f", "i": "iu", "u": "iu", "b": "b"}
    return data.kind in kinds.get(wanted.kind, wanted.kind)


def infer_specs(path: str | Path) -> tuple[TensorSpec, ...]:
    """Input specs from data alone: dim 0 is the batch; a dim that differs between files is dynamic."""
    files = data_files(Path(path))
    shapes: dict[str, list[tuple[int, ...]]] = {}
    dtypes: dict[str, np.dtype] = {}
    for file in files:
        for key, array in read_arrays(file).items():
            if key == LABEL_KEY:
                continue
            shapes.setdefault(key, []).append(array.shape)
            dtypes[key] = array.dtype
    specs = []
    for key, seen in shapes.items():
        dims: list[int | str] = ["batch"]
        for axis in range(1, len(seen[0])):
            sizes = {shape[axis] for shape in seen if len(shape) > axis}
            dims.append(sizes.pop() if len(sizes) == 1 else f"{key}_dim{axis}")
        dtype = "float32" if dtypes[key].kind == "f" else "int64" if dtypes[key].kind in "iu" else str(dtypes[key])
        specs.append(TensorSpec(key, tuple(dims), dtype))
    if not specs:
        raise UsageError(f"{path}: no input arrays found (keys other than {LABEL_KEY!r})")
    return tuple(specs)


def load_npz_data(
    path: str | Path, specs: Sequence[TensorSpec], batch_size: int = 16, limit: int | None = None
) -> CalibrationData:
    """Read and check every file once: keys, ranks, fixed dims, dtypes, finite values."""
    if batch_size < 1:
        raise UsageError("batch size must be at least 1")
    if not specs:
        raise UsageError("the model declares no inputs: there is nothing to feed it")
    files = data_files(Path(path))
    shards, has_labels, one_hot = [], True, False
    for file in files:
        arrays = read_arrays(file)
        renamed = _single_input_key(file, arrays, specs)
        arrays.update({name: arrays[key] for name, key in renamed})
        count = _check_file(file, arrays, specs)
        has_labels = has_labels and LABEL_KEY in arrays
        if LABEL_KEY in arrays:
            one_hot = check_labels(file, arrays[LABEL_KEY]) or one_hot
        if count:
            shards.append(Shard(file, tuple(range(count)), renamed))
    data = CalibrationData(tuple(shards), tuple(specs), batch_size, has_labels, source=str(path),
                           one_hot_labels=one_hot)
    if limit is not None:
        data = data.take(limit)
    if len(data) == 0:
        raise UsageError(f"{path}: no samples")
    return data


def _single_input_key(file: Path, arrays: dict[str, np.ndarray], specs: Sequence[TensorSpec]
                      ) -> tuple[tuple[str, str], ...]:
    """A single-input model takes a file's one array whatever its key: nothing is ambiguous."""
    keys = [key for key in arrays if key != LABEL_KEY]
    if len(specs) == 1 and specs[0].name not in arrays and len(keys) == 1:
        return ((specs[0].name, keys[0]),)
    if file.suffix == ".npy" and len(specs) > 1:
        raise UsageError(f"{file}: a .npy file holds one array, and this model has {len(specs)} inputs "
                         f"({', '.join(spec.name for spec in specs)}): give an .npz with one key per input")
    return ()


def _check_file(file: Path, arrays: dict[str, np.ndarray], specs: Sequence[TensorSpec]) -> int:
    missing = [spec.name for spec in specs if spec.name not in arrays]
    if missing:
        raise UsageError(
            f"{file}: missing input {', '.join(map(repr, missing))} (keys: {', '.join(sorted(arrays)) or 'none'})"
        )
    counts = set()
    for spec in specs:
        array = arrays[spec.name]
        samples_on = batch_axis(spec.shape)
        if samples_on is None and array.ndim <= 1:  # a scalar input: one value for all, or one per sample
            if not _compatible(array.dtype, spec.np_dtype):
                raise UsageError(f"{file}: input {spec.name!r} is {array.dtype}, the model expects {spec.dtype}")
            if array.ndim:
                counts.add(array.shape[0])
            continue
        if array.ndim != spec.rank:
            raise UsageError(
                f"{file}: input {spec.name!r} has shape {array.shape}, the model expects rank {spec.rank} "
                f"{_shape_text(spec)}"
            )
        for axis, dim in enumerate(spec.shape):
            if axis != samples_on and isinstance(dim, int) and array.shape[axis] != dim:
                raise UsageError(
                    f"{file}: input {spec.name!r} has shape {array.shape}, the model expects {_shape_text(spec)}"
                )
        if not _compatible(array.dtype, spec.np_dtype):
            raise UsageError(f"{file}: input {spec.name!r} is {array.dtype}, the model expects {spec.dtype}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise UsageError(f"{file}: input {spec.name!r} has {bad} NaN or Inf values")
        counts.add(array.shape[samples_on])
    if LABEL_KEY in arrays:
        counts.add(arrays[LABEL_KEY].shape[0] if arrays[LABEL_KEY].ndim else -1)
    if len(counts) > 1:
        raise UsageError(f"{file}: arrays disagree on the number of samples ({sorted(counts)})")
    return counts.pop() if counts else 0


def _shape_text(spec: TensorSpec) -> str:
    return "[" + ", ".join(str(d) for d in spec.shape) + "]"


def random_data(
    specs: Sequence[TensorSpec], samples: int, batch_size: int, seed: int, folder: Path
) -> CalibrationData:
    """Synthetic samples for when no real data exists; reports say so."""
    rng = np.random.default_rng(seed)
    arrays = {}
    if not specs:
        raise UsageError("the model declares no inputs: there is nothing to feed it")
    needed = 0
    for spec in specs:
        dims = [d if isinstance(d, int) else 0 for d in spec.shape[1:]]
        if 0 in dims or any(d < 0 for d in dims):
            raise UsageError(
                f"random data needs fixed dims for {spec.name!r} {_shape_text(spec)}: give --input with sizes"
            )
        needed += samples * float(np.prod(dims, dtype=np.float64)) * spec.np_dtype.itemsize
    if needed > MAX_RANDOM_BYTES:
        raise UsageError(f"random data for this model would take {needed / 2**30:.3g} GiB "
                         f"({samples} samples of {', '.join(f'{s.name} {_shape_text(s)}' for s in specs)}): "
                         "give --input with smaller sizes or real --calib-data")
    for spec in specs:
        shape = [samples] + [d if isinstance(d, int) else 0 for d in spec.shape[1:]]
        if spec.np_dtype.kind == "f":
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.np_dtype)
        else:
            arrays[spec.name] = rng.integers(0, 100, size=shape).astype(spec.np_dtype)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "random.npz"
    np.savez(path, **arrays)
    return CalibrationData(
        (Shard(path, tuple(range(samples))),), tuple(specs), batch_size, False,
        source="random", synthetic=True, random_seed=seed,
    )
