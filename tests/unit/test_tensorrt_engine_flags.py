"""How the engine build talks to each TensorRT major, checked against stand-ins for its Python module (TensorRT
itself cannot be installed here): 11 builds strongly typed networks only and has no FP16/INT8 builder flags."""

from types import SimpleNamespace

import pytest

from compress_export.errors import UsageError
from compress_export.exporters.tensorrt.engine import configure, network_flags
from compress_export.exporters.tensorrt.options import EngineFlags


def fake_tensorrt(version: str, weak_flags: bool, strongly_typed_flag: bool = True):
    creation = SimpleNamespace(EXPLICIT_BATCH=0, **({"STRONGLY_TYPED": 5} if strongly_typed_flag else {}))
    builder_flags = dict(VERSION_COMPATIBLE="VERSION_COMPATIBLE", EXCLUDE_LEAN_RUNTIME="EXCLUDE_LEAN_RUNTIME",
                         SPARSE_WEIGHTS="SPARSE_WEIGHTS")
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
    assert recorded == {"strongly_typed": True, "version_compatible": True, "hardware_compat": "ampere-plus",
                        "sparse_weights": False}
    del trt.HardwareCompatibilityLevel
    with pytest.raises(UsageError, match="hardware compatibility"):
        configure(trt, FakeConfig(), EngineFlags(hardware_compat="same-cc"), True)


def test_a_model_marked_2_4_is_built_with_sparse_weights(tmp_path):
    import onnx

    from compress_export.exporters.tensorrt.engine import with_model_flags
    from compress_export.exporters.tensorrt.lint import SPARSITY_KEY
    from compress_export.graphs.onnx_io import set_metadata

    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "m.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    assert with_model_flags(EngineFlags(), path).sparse_weights is False
    set_metadata(path, {SPARSITY_KEY: "2:4"})
    flags = with_model_flags(EngineFlags(), path)
    config = FakeConfig()
    recorded = configure(fake_tensorrt("11.0.0", weak_flags=False), config, flags, True)
    assert config.flags == ["SPARSE_WEIGHTS"] and recorded["sparse_weights"] is True
