"""The task's artifact-scope metrics (compute, per-layer error), measured once per artifact: by the pipeline after
the budget search and by `validate` on the bundle's reference data."""

from __future__ import annotations

from ..metrics.base import ArtifactProbe


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
