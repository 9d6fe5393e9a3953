"""Reading arrays from `.npz` and `.npy` files without trusting their headers: the shape and dtype each
array declares are checked against the bytes the file holds (and a sane limit) before numpy allocates,
and object arrays (pickles) are refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import UsageError

MAX_ARRAY_BYTES = 32 << 30
SUFFIXES = (".npz", ".npy")


def data_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(file for file in path.rglob("*") if file.suffix in SUFFIXES and file.is_file())
        if not files:
            raise UsageError(f"{path}: folder has no .npz or .npy files")
        return files
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    return [path]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in an .npz file by key, or a .npy file's one array under the file's stem."""
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as handle:
                _check_header(handle, path.stat().st_size, f"{path}")
            return {path.stem: np.load(path, allow_pickle=False)}
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as handle:
                        _check_header(handle, info.file_size, f"{path}: array {info.filename[:-4]!r}")
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except UsageError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        kind = ".npy" if path.suffix == ".npy" else ".npz"
        raise UsageError(f"{path}: not a readable {kind} file ({str(exc).splitlines()[0][:200]})") from None


def _check_header(handle, stored_bytes: int, what: str) -> None:
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = read(handle, max_header_size=10_000)
    if dtype.hasobject:
        raise UsageError(f"{what} holds Python objects, which load by unpickling: save plain numeric arrays")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES or declared > stored_bytes:
        raise UsageError(f"{what} declares shape {shape} of {dtype} ({declared / 2**30:.3g} GiB) but the file holds "
                         f"{stored_bytes / 2**20:.3g} MiB: the file is corrupt or crafted")
