"""The task's artifact-scope metrics (compute, per-layer error), measured once per artifact: by the pipeline after
the budget search and by `validate` on the bundle's reference data."""

from __future__ import annotations

from ..metrics.base import ArtifactProbe


def analysis_warnings(found: dict) -> list[str]:
    """The warnings the artifact-scope results in `found` give."""
    from ..metrics import all_metrics

    return [line for metric in all_metrics() if metric.scope == "artifact" and metric.name in found
            for line in metric.warnings(found[metric.name])]


def artifact_analysis(probe: ArtifactProbe, names) -> dict:
    """{metric name: result} of every artifact-scope metric among `names` that applies to this artifact."""
    from ..metrics import get_metrics

    found = {}
    for metric in get_metrics(names):
        if metric.scope == "artifact":
            result = metric.measure(probe)
            if result:
                found[metric.name] = result
    return found
