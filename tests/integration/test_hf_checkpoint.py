"""A Hugging Face checkpoint folder and a text file are a whole job: the folder's tokenizer makes the data,
an encoder is validated on its sentence embedding and a classifier on its logits, and pickled weights are
refused before anything is read from them."""

import pickle

import pytest

from compress_export.errors import UsageError
from compress_export.job import PipelineConfig
from compress_export.pipeline import run

WORDS = ["the", "model", "runs", "fast", "slow", "int8", "export", "bundle", "check", "edge", "server", "quality"]


def checkpoint(folder, classifier=False, layers=1):
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(folder))
    config = transformers.BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=2, intermediate_size=48, max_position_embeddings=64,
                                     num_labels=3)
    import torch

    torch.manual_seed(0)
    model = (transformers.BertForSequenceClassification if classifier else transformers.BertModel)(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def texts(path, count=40):
    import random

    rng = random.Random(0)
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(count)))
    return path


@pytest.mark.parametrize(("classifier", "task"), [(False, "embedding"), (True, "classification")])
def test_a_checkpoint_folder_and_a_text_file_are_a_whole_job(tmp_path, classifier, task):
    folder = checkpoint(tmp_path / "ckpt", classifier)
    result = run(PipelineConfig(model=str(folder), targets="onnx,onnx-int8", out=tmp_path / "out",
                                text_data=str(texts(tmp_path / "texts.txt")), seq_len=16, bench=None, progress=False))
    assert result.failures == [] and result.exit_code in (0, 1)
    report = result.reports[0].to_dict()
    assert report["task"] == task
    assert report["source"]["inputs"] == [{"name": "input_ids", "shape": ["batch", "seq"], "dtype": "int64"},
                                          {"name": "attention_mask", "shape": ["batch", "seq"], "dtype": "int64"}]
    assert report["source"]["exporter"].startswith("torch.onnx: optimum-onnx")  # the report says which and why
    assert result.reports[0].passed  # FP32 ONNX against the checkpoint itself
    import numpy as np

    with np.load(tmp_path / "out" / "onnx" / "reference" / "inputs.npz") as inputs:
        ids = inputs["input_ids"]
        assert ids.shape[1] == 16 and ids[:, 0].tolist() == [2] * len(ids)  # [CLS] first: the folder's tokenizer
    if not classifier:
        with np.load(tmp_path / "out" / "onnx" / "reference" / "outputs.npz") as outputs:
            assert next(iter(outputs.values())).shape[1] == 32  # the pooled embedding, hidden size 32
    # the INT8 encoder ships with its residual LayerNorms and GELUs fused, and the report says so
    import onnx

    int8 = result.reports[1].to_dict()
    shipped = {node.op_type for node in onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx")).graph.node}
    assert {"SkipLayerNormalization", "BiasGelu", "QuantizeLinear"} <= shipped
    assert any(note.startswith("transformer fusions (") for note in int8["notes"])


def test_pickled_checkpoint_weights_are_refused_without_running_them(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    trace = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(trace), "w"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UsageError, match="pickled"):
        run(PipelineConfig(model=str(folder), targets="onnx", out=tmp_path / "out",
                           text_data=str(texts(tmp_path / "t.txt")), bench=None, progress=False))
    assert not trace.exists()


def test_text_data_needs_a_checkpoint_folder(tmp_path, digits_onnx):
    with pytest.raises(UsageError, match="--text-data needs a Hugging Face checkpoint folder"):
        run(PipelineConfig(model=str(digits_onnx), targets="onnx", out=tmp_path / "out",
                           text_data=str(texts(tmp_path / "t.txt")), bench=None, progress=False))


def test_a_layer_dropped_student_is_distilled_from_the_checkpoint(tmp_path):
    from compress_export.compression.distill_torch import DistillSettings
    from compress_export.compression.student import StudentSettings

    folder = checkpoint(tmp_path / "bert", layers=4)
    compression = (("student", StudentSettings("every:2")), ("distill", DistillSettings(steps=30, device="cpu")))
    result = run(PipelineConfig(model=str(folder), targets="onnx", out=tmp_path / "out", text_data=str(texts(
        tmp_path / "t.txt")), seq_len=16, bench=None, progress=False, compression=compression))
    assert result.failures == []
    report = result.reports[0].to_dict()
    assert report["student"]["blocks_before"] == 4 and report["student"]["blocks_after"] == 2
    stages = {row["stage"]: row for row in report["distill"]["stages"]}
    assert stages["student"]["parameters"] < stages["original"]["parameters"]
    # Random weights make no quality claim (the CNN and MiniLM benchmarks do); the steps ran and the result holds.
    assert report["distill"]["steps"] == 30 and stages["distilled"]["cosine"] > 0.99
    assert report["flops"]["candidate"]["macs"] < report["flops"]["reference"]["macs"]
