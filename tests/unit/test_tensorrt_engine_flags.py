"""How the engine build talks to each TensorRT major, checked against stand-ins for its Python module (TensorRT
itself cannot be installed here): 11 builds strongly typed networks only and has no FP16/INT8 builder flags."""

from types import SimpleNamespace

import pytest

from compress_export.errors import UsageError
from compress_export.exporters.tensorrt.engine import configure, network_flags
from compress_export.exporters.tensorrt.options import EngineFlags


def fake_tensorrt(version: str, weak_flags: bool, strongly_typed_flag: bool = True):
    creation = SimpleNamespace(EXPLICIT_BATCH=0, **({"STRONGLY_TYPED": 5} if strongly_typed_flag else {}))
    builder_flags = dict(VERSION_COMPATIBLE="VERSION_COMPATIBLE", EXCLUDE_LEAN_RUNTIME="EXCLUDE_LEAN_RUNTIME")
    if weak_flags:
        builder_flags.update(FP16="FP16", INT8="INT8")
    levels = SimpleNamespace(NONE="NONE", AMPERE_PLUS="AMPERE_PLUS", SAME_COMPUTE_CAPABILITY="SAME_CC")
    return SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=creation,
                           BuilderFlag=SimpleNamespace(**builder_flags), HardwareCompatibilityLevel=levels)


class FakeConfig:
    def __init__(self):
        self.flags = []
        self.hardware_compatibility_level = "NONE"

    def set_flag(self, flag):
        self.flags.append(flag)


def test_tensorrt_11_networks_are_strongly_typed_and_get_no_precision_flags():
    trt = fake_tensorrt("11.2.0", weak_flags=False, strongly_typed_flag=False)
    flags, strongly_typed = network_flags(trt, EngineFlags())
    assert (flags, strongly_typed) == (0, True)
    config = FakeConfig()
    recorded = configure(trt, config, EngineFlags(), strongly_typed)  # would raise on a missing BuilderFlag.FP16
    assert config.flags == [] and recorded["strongly_typed"] is True
    with pytest.raises(UsageError, match="weak typing was removed"):
        network_flags(trt, EngineFlags(weakly_typed=True))


def test_tensorrt_10_is_strongly_typed_by_default_and_weak_on_request():
    trt = fake_tensorrt("10.13.0", weak_flags=True)
    assert network_flags(trt, EngineFlags()) == (1 << 5, True)
    flags, strongly_typed = network_flags(trt, EngineFlags(weakly_typed=True))
    assert strongly_typed is False
    config = FakeConfig()
    configure(trt, config, EngineFlags(weakly_typed=True), strongly_typed)
    assert config.flags == ["INT8", "FP16"]


def test_compatibility_flags_reach_the_builder_config():
    trt = fake_tensorrt("11.0.0", weak_flags=False)
    config = FakeConfig()
    recorded = configure(trt, config, EngineFlags(version_compatible=True, hardware_compat="ampere-plus"), True)
    assert config.flags == ["VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"]
    assert config.hardware_compatibility_level == "AMPERE_PLUS"
    assert recorded == {"strongly_typed": True, "version_compatible": True, "hardware_compat": "ampere-plus"}
    del trt.HardwareCompatibilityLevel
    with pytest.raises(UsageError, match="hardware compatibility"):
        configure(trt, FakeConfig(), EngineFlags(hardware_compat="same-cc"), True)
