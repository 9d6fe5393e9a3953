"""Writing without leaving anything half-written: a bundle folder filled under a temporary name and renamed into
place (the previous bundle stays until then), single files written beside their place and renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UsageError


def ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".ce-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {out}: not writable ({exc.strerror or exc})") from None


class BundleWriter:
    """`with BundleWriter(final) as folder:` fill `folder`; it replaces `final` only on success."""

    def __init__(self, final: Path):
        self.final = final
        self.folder: Path | None = None

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=self.final.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.folder.chmod(0o777 & ~umask)
        return self.folder

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        retired = None
        if self.final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.final.parent))
            os.replace(self.final, retired / "bundle")
        os.replace(self.folder, self.final)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """The whole file or none of it: written beside it under a dot name, then renamed into place."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


