"""`--distill`: the pruned model learns the original's outputs (label-free; labels in the training data add the
task loss), on a GPU when torch sees one. Every target is then built from the distilled model."""

from __future__ import annotations

from ..sources.torch_source import TorchModel
from .base import Compressed, CompressionMethod, current_model
from .distill_torch import DistillSettings
from .stages import refuse_without_prune, stage_table, torch_module_of, trained_stage
from .training import step_bar, total_steps, training_line, training_record


class Distillation(CompressionMethod):
    name = "distill"
    title = "Distillation"

    def apply(self, job, settings: DistillSettings) -> Compressed:
        from ..sources.torch_source import differentiable_forward
        from .distill_torch import distill, resolve_device

        refuse_without_prune(job)
        student_model, _, _ = current_model(job)
        teacher = torch_module_of(job.model, "--distill")
        device = resolve_device(settings.device)
        forward = differentiable_forward(job.model, device)
        total = total_steps(settings.steps, settings.epochs, job.train)
        with step_bar(total, "distill", job.config.progress) as on_step:
            student, result = distill(student_model.module, teacher, forward, job.train, settings, on_step, total)
        tuned = TorchModel(student, student_model.description, student_model.sha256, student_model.inputs)
        section = {"settings": settings.__dict__, **training_record(result),
                   "train_data": job.config.train_data or "the calibration data", "labels": job.train.has_labels}
        return trained_stage(job, tuned, section, "model.distilled.onnx", "distilled", result.losses,
                             ("distill_loss.png", "distillation"))

    def markdown(self, section: dict, report) -> list[str]:
        return [f"{training_line(section, 'distill_loss.png')}. Data: {section['train_data']}"
                f"{', with labels' if section['labels'] else ', no labels'}; {section['hidden_pairs']} hidden-state "
                "pairs matched beside the outputs.", "", *stage_table(section["stages"], report)]
