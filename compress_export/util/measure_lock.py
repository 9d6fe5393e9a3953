"""One machine, one measurement at a time, and no one else's compute during it: a reader-writer lock on a file.

A benchmark takes the lock exclusively; a fleet job holds it shared for as long as its process lives (from before the
process starts, so its imports count as compute too), so a timing never shares the cores with another job's work and
two jobs never time at once. Waiting measurements go first (a turnstile), so a stream of jobs cannot starve them.
The kernel drops a dead process's locks, so a killed job never leaves the machine locked. Plain runs take it only to
measure.

A job's shared hold is taken by whoever starts the job and handed to its process as an open file (HELD_FD_ENV):
flock belongs to the open file, so the process gives it up and takes it back around its measurements with explicit
unlock and lock calls (closing its copy would not release what the parent's copy still holds)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from pathlib import Path

ENV = "COMPRESS_EXPORT_LOCK_DIR"  # where the lock files live (default: the system's temporary folder)
HELD_FD_ENV = "COMPRESS_EXPORT_SHARED_FD"  # an inherited open file holding this job's shared hold

_state = threading.local()


def lock_dir() -> Path:
    return Path(os.environ.get(ENV) or tempfile.gettempdir())


def _open(name: str) -> int:
    path = lock_dir() / f"compress-export-{name}.lock"
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def _lock(handle: int, mode: int) -> None:
    """Take `mode` on `handle` behind any measurement already waiting."""
    turnstile = _open("turnstile")
    try:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(handle, mode)
    finally:
        os.close(turnstile)  # closing releases it


def _inherited() -> int | None:
    text = os.environ.get(HELD_FD_ENV, "")
    if not text.isdigit():
        return None
    try:
        os.fstat(int(text))
    except OSError:
        return None
    return int(text)


def hold_shared() -> int:
    """A new open file holding the machine shared: pass it to a job's process (`pass_fds`, HELD_FD_ENV); close it
    when the process has ended."""
    handle = _open("measure")
    _lock(handle, fcntl.LOCK_SH)
    return handle


@contextlib.contextmanager
def measuring():
    """The machine to this measurement alone: this process's shared hold is given up while it waits and taken back
    after (two jobs each holding it shared and asking for it exclusively would wait on each other forever)."""
    if getattr(_state, "exclusive", False):  # nested: the machine is this measurement's already
        yield
        return
    shared = _inherited()
    if shared is not None:
        fcntl.flock(shared, fcntl.LOCK_UN)
    handle = _open("measure")
    _lock(handle, fcntl.LOCK_EX)
    _state.exclusive = True
    try:
        yield
    finally:
        _state.exclusive = False
        os.close(handle)
        if shared is not None:
            _lock(shared, fcntl.LOCK_SH)
