"""Detection agreement for outputs in the common YOLO layout ((batch, 4 + classes, anchors) or its
transpose; boxes as centre x, centre y, width, height in pixels, then one score in [0, 1] per class):
the boxes a user would see after the usual postprocess (score > 0.25, per-class NMS at IoU 0.45), the
candidate's matched to the original's (same class, IoU >= 0.5). detection_f1 counts every box;
top_box_agreement asks whether each image's most confident box survives. Cosine over such an output is
dominated by the box coordinates and can pass while every class score is dead."""

from __future__ import annotations

from .base import Gate, OutputMetric

SCORE = 0.25
NMS_IOU = 0.45
MATCH_IOU = 0.5
MAX_BOXES = 300
MIN_ANCHORS_PER_CHANNEL = 8


def yolo_layout(array):
    """(batch, anchors, 4 + classes) view of a YOLO-layout output, or None when it is not one."""
    import numpy as np

    if array.ndim != 3 or array.size == 0:
        return None
    channels, anchors = sorted(array.shape[1:])
    if not 5 <= channels <= 1024 or anchors < MIN_ANCHORS_PER_CHANNEL * channels:
        return None
    rows = array if array.shape[2] == channels else array.transpose(0, 2, 1)
    scores, boxes = rows[..., 4:], rows[..., :4]
    if scores.min() < 0 or scores.max() > 1 or np.abs(boxes).max() <= 1:
        return None
    return rows


def decode(rows) -> tuple:
    """(boxes x1 y1 x2 y2, classes, scores) of one image after thresholding and per-class NMS."""
    import numpy as np

    scores = rows[:, 4:]
    classes, best = scores.argmax(axis=1), scores.max(axis=1)
    keep = best > SCORE
    centre, size = rows[keep, :2], rows[keep, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    classes, best = classes[keep], best[keep]
    order = np.argsort(-best, kind="stable")
    boxes, classes, best = boxes[order], classes[order], best[order]
    if not len(boxes):
        return boxes, classes, best
    shifted = boxes + classes[:, None] * (np.abs(boxes).max() + 1.0)  # boxes of different classes never overlap
    chosen: list[int] = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for index in range(len(boxes)):
        if suppressed[index]:
            continue
        chosen.append(index)
        if len(chosen) == MAX_BOXES:
            break
        suppressed |= iou(shifted[index], shifted) > NMS_IOU
    return boxes[chosen], classes[chosen], best[chosen]


def iou(box, boxes):
    import numpy as np

    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    area = (box[2:] - box[:2]).clip(0).prod()
    areas = (boxes[:, 2:] - boxes[:, :2]).clip(0).prod(axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


def matches(reference: tuple, candidate: tuple) -> int:
    """Candidate boxes (most confident first) matched one to one to reference boxes of their class."""
    import numpy as np

    ref_boxes, ref_classes, _ = reference
    taken = np.zeros(len(ref_boxes), dtype=bool)
    found = 0
    for box, label in zip(candidate[0], candidate[1], strict=True):
        if not len(ref_boxes):
            break
        overlap = np.where((ref_classes == label) & ~taken, iou(box, ref_boxes), 0.0)
        best = int(overlap.argmax())
        if overlap[best] >= MATCH_IOU:
            taken[best] = True
            found += 1
    return found


class DetectionAgreement(OutputMetric):
    name = "detections"
    keys = ("detection_f1", "top_box_agreement", "boxes_reference", "boxes_candidate")
    gate = Gate("min_detection_f1", 0.9, "Gate: smallest accepted F1 of the candidate's boxes against the "
                "original's (same class, IoU >= 0.5), for YOLO-layout detection outputs.",
                higher_is_better=True, score_key="detection_f1", high=1.0)

    def start(self) -> dict:
        return {"matched": 0, "reference": 0, "candidate": 0, "top_agree": 0, "top_total": 0, "applies": True}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        ref_rows, cand_rows = yolo_layout(reference), None
        if ref_rows is not None:
            cand_rows = candidate if candidate.shape == ref_rows.shape else candidate.transpose(0, 2, 1)
        if ref_rows is None or cand_rows.shape != ref_rows.shape:
            state["applies"] = False
            return
        for ref_image, cand_image in zip(ref_rows, cand_rows, strict=True):
            ref, cand = decode(ref_image), decode(cand_image)
            state["matched"] += matches(ref, cand)
            state["reference"] += len(ref[0])
            state["candidate"] += len(cand[0])
            if len(ref[0]):
                state["top_total"] += 1
                top = (ref[0][:1], ref[1][:1], ref[2][:1])
                state["top_agree"] += int(len(cand[0]) > 0 and matches(top, tuple(part[:1] for part in cand)) == 1)

    def result(self, state: dict) -> dict:
        boxes = state["reference"] + state["candidate"]
        if not state["applies"] or not boxes:
            return {}
        result = {"detection_f1": 2 * state["matched"] / boxes, "boxes_reference": state["reference"],
                  "boxes_candidate": state["candidate"]}
        if state["top_total"]:
            result["top_box_agreement"] = state["top_agree"] / state["top_total"]
        return result

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        if "detection_f1" not in stats:
            return []
        rows = [(f"detection F1 `{output}` (boxes {stats['boxes_reference']} -> {stats['boxes_candidate']})",
                 1.0, stats["detection_f1"])]
        if "top_box_agreement" in stats:
            rows.append((f"top box unchanged `{output}`", 1.0, stats["top_box_agreement"]))
        return rows


METRIC = DetectionAgreement()
