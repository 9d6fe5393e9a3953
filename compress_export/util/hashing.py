"""sha256 of files, read in blocks so large models do not load into memory."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_files(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_files(path)
