"""KID (Bińkowski et al., 2018): the unbiased squared MMD between the features of the FP32 and the compressed
generator's images under the cubic polynomial kernel (x.y/d + 1)^3, through the same features as FID, scaled by the
FP32 features' RMS (Inception's features are O(1); general random features are not, and the cube would blow up).
Unbiased at any sample count, where FID's covariance needs many more images than features; 0 when the two sets are
the same."""

from __future__ import annotations

import math

from .base import Gate
from .fid import Fid


def kernel_distance(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    m, n, d = len(a), len(b), a.shape[1]
    scale = np.sqrt((a**2).sum(axis=1).mean() / d)  # the reference's feature RMS: a kernel of O(1) products
    if scale > 0:
        a, b = a / scale, b / scale
    kxx, kyy, kxy = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    within = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    # Paired sets (image i of both from the same inputs): the cross term leaves out the pairs too, as Gretton et
    # al.'s equal-size U-statistic does, else two identical sets read below zero by their kernel's diagonal.
    across = (kxy.sum() - np.trace(kxy)) / (m * (m - 1)) if m == n else kxy.mean()
    value = float(within - 2 * across)
    return value if math.isfinite(value) else math.inf


class Kid(Fid):
    name = "kid"
    label = "KID vs FP32 images"
    gate = Gate("max_kid", 0.05, "Gate (image generators): largest accepted KID (squared kernel distance) between the "
                "features of the FP32 and the compressed generator's images; unbiased at small sample counts.",
                higher_is_better=False, score_key="kid")

    def configured(self, settings) -> Kid:
        return Kid(settings.fid_features)

    def result(self, state: dict) -> dict:
        import numpy as np

        if len(state["reference"]) == 0:
            return {}
        reference, candidate = np.concatenate(state["reference"]), np.concatenate(state["candidate"])
        if len(reference) < 2:
            return {}
        return {"candidate": {"kid": kernel_distance(reference, candidate)}}


METRIC = Kid()
