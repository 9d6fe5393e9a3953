"""A graph made for a runtime that is not here (trt-int8's QDQ ONNX for TensorRT) is validated in a proxy: onnxruntime
computing each Q/DQ as written. One implementation can be wrong in ways its own numbers never show, so the same
graph also runs in OpenVINO (its own Q/DQ import and INT8 kernels) on held-out samples and the two are compared
output by output (per sample and per group of channels of one scale, as the cosine gate reads them). A disagreement
is a warning: one of them computes the graph wrongly, and neither is the engine that will run it. onnxruntime with
its optimizations on is no second opinion: its fused signed-INT8 kernels saturate on CPUs without VNNI (cosine 0.926
on a 4-8-3 MLP that reads 0.9998 unfused), which says nothing of the graph."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from .base import ArtifactMetric, ArtifactProbe

PROXIES = ("onnxruntime-exact",)
SAMPLES = 32
AGREEMENT = 0.99  # the smallest cosine at which two runtimes count as computing the same graph
SECOND = "openvino"


def agreement(probe: ArtifactProbe, other: str, batches: list) -> dict:
    """{label: cosine} between the artifact's outputs on `batches` in its own runtime and in `other`."""
    import numpy as np

    from ..runtimes import open_runner
    from ..runtimes.base import by_reference_names
    from ..samplers import TRAJECTORY
    from .cosine import METRIC as COSINE

    names = [name for name in batches[0][2] if name != TRAJECTORY]  # one call of the model, not its sampler
    states = {name: COSINE.start() for name in names}
    with open_runner(probe.runtime, str(probe.path)) as own, open_runner(other, str(probe.path)) as second:
        for feeds, _, _ in batches:
            mine, theirs = (by_reference_names(runner.infer(feeds), names) for runner in (own, second))
            for name in names:
                COSINE.update(states[name], *(np.asarray(side[name], np.float64) for side in (mine, theirs)))
    parity = {name: COSINE.result(state) for name, state in states.items()}
    return dict(COSINE.gate_values(parity, {}))


class SecondRuntime(ArtifactMetric):
    name = "second_runtime"
    title = "Second runtime"

    def measure(self, probe: ArtifactProbe) -> dict | None:
        if probe.runtime not in PROXIES or Path(probe.path).suffix != ".onnx" or not probe.batches:
            return None
        if find_spec(SECOND) is None:
            return {"runtime": probe.runtime, "second": None, "agree": None,
                    "missing": "pip install 'compress-export[openvino]'"}
        from ..data.validation_set import subsample
        from ..errors import CompressExportError

        batches = subsample(probe.batches, SAMPLES)
        try:
            cosines = agreement(probe, SECOND, batches)
        except CompressExportError as error:  # the cross-check's own failure: said, never the artifact's
            return {"runtime": probe.runtime, "second": SECOND, "agree": None, "error": str(error)}
        from ..runtimes.machine import has_vnni

        worst = min(cosines.values(), default=1.0)
        return {"runtime": probe.runtime, "second": SECOND, "samples": sum(
            len(next(iter(feeds.values()))) for feeds, _, _ in batches), "cosine": cosines,
            "agree": worst >= AGREEMENT, "threshold": AGREEMENT, "vnni": has_vnni()}

    def warnings(self, result: dict) -> list[str]:
        if result.get("error"):
            return [f"not cross-checked in {result['second']}: {result['error']}"]
        if result["agree"] is not False:
            return []
        label, value = min(result["cosine"].items(), key=lambda item: item[1])
        cause = ("one of them reads the graph wrongly" if result.get("vnni", True) else
                 "this CPU has no VNNI, where OpenVINO's u8 x s8 kernels sum products in pairs into 16 bits and can "
                 "saturate: check on a CPU with VNNI before blaming the graph")
        return [f"{result['second']} computes this graph differently from {result['runtime']}: {label} "
                f"{value:.4f} between the two (agreement is {AGREEMENT}); {cause}"]

    def markdown(self, result: dict) -> list[str]:
        if result["second"] is None:
            return [f"Not cross-checked: OpenVINO is not installed ({result['missing']})."]
        if result.get("error"):
            return [f"Not cross-checked: {result['error']} (the second opinion failed, not the artifact)."]
        verdict = "agree" if result["agree"] else "**disagree**"
        lines = [f"The artifact in {result['second']} against {result['runtime']} on {result['samples']} held-out "
                 f"samples: they {verdict} (cosine >= {result['threshold']}).", "", "| output | cosine |", "|---|---|"]
        lines += [f"| {label.removeprefix('min_cosine')} | {value:.4f} |" for label, value in result["cosine"].items()]
        return lines


METRIC = SecondRuntime()
