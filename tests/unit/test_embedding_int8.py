"""Embedding tables become INT8 with a scale per row: 4x smaller, the rows a batch reads come back within one
rounding step, and a table also read by a MatMul (tied weights) stays as it is."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compress_export.exporters.onnx.embedding_int8 import MIN_ELEMENTS, quantize_embedding_tables


def embedding_model(tied: bool, rows=400, width=256):
    table = np.random.default_rng(0).normal(0, 0.05, (rows, width)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"], name="lookup")]
    outputs = [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", "seq", width])]
    if tied:
        nodes.append(helper.make_node("MatMul", ["emb", "table_t"], ["logits"], name="head"))
        nodes.insert(0, helper.make_node("Transpose", ["table"], ["table_t"], name="tie"))
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", rows]))
    graph = helper.make_graph(nodes, "emb", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                              outputs, [numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), table


def run(model, ids):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"ids": ids})[0]


def test_a_table_becomes_int8_rows_that_come_back_within_a_rounding_step():
    model, table = embedding_model(tied=False)
    assert table.size >= MIN_ELEMENTS
    ids = np.random.default_rng(1).integers(0, 400, (3, 7)).astype(np.int64)
    before = run(model, ids)
    notes = quantize_embedding_tables(model)
    assert len(notes) == 1 and "400 x 256" in notes[0]
    onnx.checker.check_model(model)
    stored = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    assert "table" not in stored and stored["table_int8"].dtype == np.int8
    assert stored["table_int8"].nbytes + stored["table_row_scale"].nbytes < table.nbytes / 3.9
    after = run(model, ids)
    step = (np.abs(table).max(axis=1) / 127.0)[ids][..., None]
    assert np.all(np.abs(after - before) <= step / 2 + 1e-7)


def test_tied_and_small_tables_are_left_alone():
    model, _ = embedding_model(tied=True)
    assert quantize_embedding_tables(model) == []
    small, _ = embedding_model(tied=False, rows=10, width=16)
    assert quantize_embedding_tables(small) == []
