import struct

import numpy as np
import pytest

from compress_export.calibration.range_table import RangeTable
from compress_export.calibration.trt_cache import hex_to_scale, make_cache, parse_cache, scale_to_hex
from compress_export.errors import UsageError


@pytest.mark.parametrize(
    "scale, text",
    [(1 / 127, "3c010204"), (1.0, "3f800000"), (0.5, "3f000000"), (0.0, "0"), (2.0**-130, "80000")],
)
def test_known_vectors(scale, text):
    assert scale_to_hex(scale) == text
    assert hex_to_scale(text) == np.float32(scale)


def test_hex_is_lowercase_unpadded_big_endian():
    text = scale_to_hex(0.0123)
    assert text == text.lower() and not text.startswith("0")
    assert bytes.fromhex(text.zfill(8)) == struct.pack(">f", np.float32(0.0123))


def test_cache_round_trip_keeps_scales_to_the_bit():
    cache = make_cache({"input": 2.5, "conv1/out:0": 6.0, "weird: name": 0.001}, 8601, "MinMaxCalibration")
    text = cache.to_text()
    assert text.splitlines()[0] == "TRT-8601-MinMaxCalibration"
    assert "input: " + scale_to_hex(np.float32(2.5) / np.float32(127)) in text
    parsed = parse_cache(text)
    assert parsed == cache
    assert parsed.scales["weird: name"] == cache.scales["weird: name"]


def test_range_table_to_and_from_cache():
    table = RangeTable("entropy", {"a": (-1.0, 3.0), "b": (0.0, 127.0)})
    text = table.to_trt_cache()
    assert text.startswith("TRT-100300-EntropyCalibration2\n")
    assert "b: 3f800000" in text  # 127 / 127 = 1.0
    back = RangeTable.from_trt_cache(text)
    assert back.ranges["b"] == (-127.0, 127.0)
    assert back.ranges["a"][1] == pytest.approx(3.0, rel=1e-6)
    assert table.to_trt_cache(tensors=["a"]).count("\n") == 2


@pytest.mark.parametrize("text", ["", "hello\n", "TRT-100300-EntropyCalibration2\nnocolon\n",
                                  "TRT-100300-EntropyCalibration2\nx: zz\n"])
def test_bad_caches_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_cache(text)


def test_unknown_algorithm_is_refused():
    with pytest.raises(UsageError, match="unknown TensorRT calibration algorithm"):
        make_cache({"x": 1.0}, algorithm="Magic")
