import logging

import pytest

from compress_export.util.quiet_logs import quiet_loggers


def test_quiet_loggers_raise_levels_for_the_block_and_give_each_its_own_back():
    loose, strict = logging.getLogger("ce-test.loose"), logging.getLogger("ce-test.strict")
    loose.setLevel(logging.NOTSET)
    strict.setLevel(logging.CRITICAL)
    root_level = logging.getLogger().level
    with pytest.raises(RuntimeError), quiet_loggers("ce-test.loose", "ce-test.strict", ""):
        assert loose.level == logging.ERROR and logging.getLogger().level >= logging.ERROR
        assert strict.level == logging.CRITICAL  # a stricter logger is never made louder
        raise RuntimeError("the levels come back even when the block fails")
    assert (loose.level, strict.level, logging.getLogger().level) == (logging.NOTSET, logging.CRITICAL, root_level)
