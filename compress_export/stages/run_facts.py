"""What every bundle's manifest says of the run that wrote it, whatever the model: the target, the task, the source
model, the gates, the seed and the tool's version. Each stage list adds its own facts beside them."""

from __future__ import annotations

from .. import __version__


def run_facts(job, target) -> dict:
    return {"target": target.name, "task": job.task.name, "source": job.model.describe(),
            "gates": job.config.gates.to_dict(), "seed": job.config.seed, "compress_export_version": __version__}
