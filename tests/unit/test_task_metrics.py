"""Task metrics computed from outputs: each one sees what the user would see and catches the damage cosine
hides (dead class scores, a shifted mask, a changed decoded string)."""

import numpy as np
import pytest

from compress_export.metrics import get_metrics
from compress_export.metrics.detections import METRIC as DETECTIONS
from compress_export.metrics.detections import decode, yolo_layout
from compress_export.metrics.masks import METRIC as MASKS
from compress_export.metrics.sequences import METRIC as SEQUENCES
from compress_export.metrics.sequences import greedy_ctc
from compress_export.metrics.suite import MetricSuite
from compress_export.metrics.tasks import detect_task


def run(metric, reference, candidate):
    state = metric.start()
    metric.update(state, reference, candidate)
    return metric.result(state)


def yolo_output(rng, images=4, classes=3, anchors=400):
    """(images, 4 + classes, anchors): a few confident boxes per image among low-score anchors."""
    rows = np.zeros((images, 4 + classes, anchors))
    rows[:, 0:2] = rng.uniform(40, 600, (images, 2, anchors))
    rows[:, 2:4] = rng.uniform(10, 60, (images, 2, anchors))
    rows[:, 4:] = rng.uniform(0, 0.1, (images, classes, anchors))
    for image in range(images):
        for anchor in rng.choice(anchors, 5, replace=False):
            rows[image, 4 + rng.integers(classes), anchor] = rng.uniform(0.6, 0.95)
    return rows


def test_detection_f1_is_one_for_the_same_boxes_and_falls_when_class_scores_die():
    rng = np.random.default_rng(0)
    reference = yolo_output(rng)
    assert run(DETECTIONS, reference, reference)["detection_f1"] == 1.0
    dead = reference.copy()
    dead[:, 4:] = 0.0  # boxes untouched: cosine over the whole output stays near 1
    flat_ref, flat_dead = reference.reshape(4, -1), dead.reshape(4, -1)
    cosine = (flat_ref * flat_dead).sum(1) / np.linalg.norm(flat_ref, axis=1) / np.linalg.norm(flat_dead, axis=1)
    assert cosine.min() > 0.99
    result = run(DETECTIONS, reference, dead)
    assert result["detection_f1"] == 0.0 and result["top_box_agreement"] == 0.0


def test_detection_matching_needs_the_same_class_and_overlap():
    rng = np.random.default_rng(1)
    reference = yolo_output(rng, images=1)
    moved = reference.copy()
    moved[:, 0] += 200  # every box shifted far from where it was
    assert run(DETECTIONS, reference, moved)["detection_f1"] == 0.0
    swapped = reference.copy()
    swapped[:, 4:] = swapped[:, 4:][:, ::-1]  # the same boxes, other classes
    assert run(DETECTIONS, reference, swapped)["detection_f1"] < 0.5
    transposed = reference.transpose(0, 2, 1)
    assert run(DETECTIONS, transposed, transposed)["detection_f1"] == 1.0


def test_nms_keeps_one_of_two_overlapping_boxes_of_a_class():
    rows = np.zeros((100, 5))
    rows[:, 4] = 0.01
    rows[0] = [100, 100, 50, 50, 0.9]
    rows[1] = [102, 101, 50, 50, 0.8]
    rows[2] = [300, 300, 50, 50, 0.7]
    boxes, classes, scores = decode(rows)
    assert len(boxes) == 2 and list(scores) == [0.9, 0.7]


def test_layouts_that_are_not_detections_are_left_alone():
    rng = np.random.default_rng(2)
    assert yolo_layout(rng.normal(size=(2, 128, 384))) is None  # token embeddings
    assert yolo_layout(rng.dirichlet(np.ones(50), size=(2, 40))) is None  # CTC probabilities: no pixel boxes
    assert run(DETECTIONS, rng.normal(size=(2, 10)), rng.normal(size=(2, 10))) == {}


def test_mask_iou_sees_a_shifted_mask():
    reference = np.zeros((2, 1, 32, 32))
    reference[:, :, 8:24, 8:24] = 0.9
    assert run(MASKS, reference, reference)["mask_iou"] == 1.0
    shifted = np.roll(reference, 8, axis=3)
    assert run(MASKS, reference, shifted)["mask_iou"] == pytest.approx(128 / 384)
    assert run(MASKS, np.full((2, 1, 32, 32), 2.0), np.zeros((2, 1, 32, 32))) == {}  # not probabilities


def test_ctc_decoding_merges_repeats_and_drops_blanks():
    steps = np.eye(4)[[0, 1, 1, 0, 1, 2, 2, 3]][None]  # one-hot: blank a a blank a b b c
    assert greedy_ctc(steps) == [(1, 1, 2, 3)]


def test_sequence_agreement_counts_changed_strings():
    rng = np.random.default_rng(3)
    reference = rng.dirichlet(np.ones(6) * 0.2, size=(4, 12))
    assert run(SEQUENCES, reference, reference)["sequence_agreement"] == 1.0
    changed = reference.copy()
    changed[0] = changed[0][:, ::-1]
    assert run(SEQUENCES, reference, changed)["sequence_agreement"] == 0.75
    assert run(SEQUENCES, rng.normal(size=(4, 12, 6)), rng.normal(size=(4, 12, 6))) == {}


@pytest.mark.parametrize(("output", "task"), [
    (yolo_output(np.random.default_rng(4)), "detection"),
    (np.random.default_rng(5).uniform(size=(2, 1, 32, 32)), "segmentation"),
    (np.random.default_rng(6).dirichlet(np.ones(30), size=(2, 20)), "sequence"),
    (np.random.default_rng(7).normal(size=(2, 16, 384)), "embedding"),
])
def test_the_task_is_recognised_from_the_output_layout(output, task):
    assert detect_task({"out": output.astype(np.float32)}).name == task


def test_the_gate_fails_on_a_task_metric_while_cosine_passes():
    from compress_export.metrics.gates import Gates, gate_results

    rng = np.random.default_rng(8)
    reference = yolo_output(rng)
    dead = reference.copy()
    dead[:, 4:] *= 0.2
    suite = MetricSuite(["out"], get_metrics(("cosine", "detections")))
    suite.update({"out": reference}, {"out": dead}, None)
    results = {row["gate"].split("[")[0]: row["passed"] for row in gate_results(Gates(), suite.parity(),
                                                                                   suite.metrics())}
    assert results["min_cosine"] and not results["min_detection_f1"]
