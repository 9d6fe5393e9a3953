"""`--distill`: the pruned model learns the original's outputs (label-free; labels in the training data add the
task loss), on a GPU when torch sees one. Every target is then built from the distilled model."""

from __future__ import annotations

from ..sources.torch_source import TorchModel
from .base import Compressed, CompressionMethod, current_model
from .distill_torch import DistillSettings
from .qat_settings import plot_losses
from .stages import MODEL_CHANGING, finish, refuse_without_prune, stage_row, stage_table, torch_module_of
from .training import step_bar, total_steps


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
        section = {"settings": settings.__dict__, "steps": result.steps, "seconds": result.seconds,
                   "device": result.device, "lr": result.lr, "loss_first": result.losses[0] if result.losses else None,
                   "loss_last": result.losses[-1] if result.losses else None,
                   "train_data": job.config.train_data or "the calibration data", "labels": job.train.has_labels}
        done = finish(job, tuned, section, "model.distilled.onnx")
        previous = next(d.section for m, d in reversed(job.compressed) if m.name in MODEL_CHANGING)
        done.section["stages"] = [*previous["stages"], stage_row(job, "distilled", tuned, done.fp32_onnx)]
        losses = list(result.losses)
        done.files = {"distill_loss.png": lambda path: plot_losses(losses, path, "distillation")}
        return done

    def markdown(self, section: dict, report) -> list[str]:
        return [f"{section['steps']} steps in {section['seconds']:.0f} s on {section['device']} (lr "
                f"{section['lr']:g}, data: {section['train_data']}"
                f"{', with labels' if section['labels'] else ', no labels'}); loss {section['loss_first']:.4g} -> "
                f"{section['loss_last']:.4g} (`distill_loss.png`).", "", *stage_table(section["stages"], report)]
