"""Silence what native libraries print from C++ (TensorFlow, LiteRT), and keep it for error messages."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def captured_native_output() -> Iterator[Callable[[], str]]:
    """TensorFlow's tracing and converter print to the process's stdout and stderr from C++; keep that
    off the terminal (and off `--json` output) and hand it back for error messages."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)

        def text() -> str:
            sink.seek(0)
            return sink.read().decode(errors="replace")

        try:
            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
