"""The one place onnxruntime sessions are created and run. A model onnxruntime cannot load or execute is
an export error (exit 4); data that does not fit the model (wrong type or shape, an index out of range)
is a usage error (exit 2). Either way the message is onnxruntime's own first line."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ExportError, UsageError

DATA_PROBLEMS = re.compile(r"out of (data )?bounds|out of range|Unexpected input data type|Got invalid dimensions|"
                           r"invalid rank|Invalid Feed Input|input name", re.IGNORECASE)


def first_line(exc: BaseException) -> str:
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc).strip())
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]


class Session:
    """An onnxruntime CPU session whose failures are CompressExportErrors with onnxruntime's first line."""

    def __init__(self, model: str | bytes, options=None, what: str = "the model", providers: list[str] | None = None):
        import onnxruntime as ort

        self.what = what
        try:
            self.session = ort.InferenceSession(model, options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for every load failure
            raise ExportError(f"onnxruntime cannot load {what}: {first_line(exc)}") from None

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list:
        """Runs sample-major feeds (see layout.py) and returns sample-major outputs."""
        from ..data.layout import model_feeds, sample_major_outputs

        feeds, moved = model_feeds(dict(feeds), self.session.get_inputs())
        try:
            return sample_major_outputs(self.session.run(list(names) if names is not None else None, feeds), moved)
        except Exception as exc:
            message = first_line(exc)
            if type(exc).__name__ == "InvalidArgument" or DATA_PROBLEMS.search(message):
                raise UsageError(f"the data does not fit {self.what}: {message}") from None
            raise ExportError(f"onnxruntime failed running {self.what}: {message}") from None
