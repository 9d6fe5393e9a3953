"""Libraries that log progress, or a traceback before they raise, through their own loggers: silenced for one block
(the CLI's one-line messages say what happened)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Inside the block the loggers `names` ("" is the root) pass only records at `level` and above (a logger
    already stricter keeps its level); afterwards each gets its own level back."""
    loggers = [logging.getLogger(name) if name else logging.getLogger() for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, level))
    try:
        yield
    finally:
        for logger, before in zip(loggers, levels, strict=True):
            logger.setLevel(before)


def quiet_third_parties() -> None:
    """For `-q`: nothing from libraries on stderr. Logging below ERROR is off for every logger (torch installs its
    own handler and resets its levels when it is imported, so levels alone do not hold), Python warnings are
    ignored, and Hugging Face's and TensorFlow's progress bars and C++ logs are switched off before they load."""
    import os
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
