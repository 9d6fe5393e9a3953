"""`--distill`: the pruned model learns the original's outputs (label-free; labels in the training data add the
task loss), on a GPU when torch sees one. Every target is then built from the distilled model."""

from __future__ import annotations

from ..sources.torch_source import TorchModel
from ..specs import OptionSpec
from .base import Compressed, CompressionMethod, current_model
from .chain import refuse_without_prune, stage_table, torch_module_of, trained_stage
from .distill_torch import DistillSettings
from .training import step_bar, total_steps, training_line, training_record


def distill_settings(values, seed: int) -> DistillSettings:
    """The --distill-* fine-tuning settings (distillation and 2:4 sparsity share them; --alpha is QAT's option)."""
    return DistillSettings(epochs=values["distill_epochs"], steps=values["distill_steps"], lr=values["distill_lr"],
                           alpha=values["alpha"], seed=seed, device=values["device"], hidden=values["distill_hidden"])


class Distillation(CompressionMethod):
    name = "distill"
    model_kinds = ("torch", "language-model")
    title = "Distillation"
    options = (
        OptionSpec("--distill", "With --prune or --student: train that model on the original's outputs (label-free; a "
                   "'label' key in --train-data adds the task loss).", "flag"),
        OptionSpec("--distill-epochs", "--distill and --sparsity fine-tuning: passes over the training data.", "int",
                   30, minimum=1),
        OptionSpec("--distill-steps", "--distill and --sparsity fine-tuning: stop after this many steps instead.",
                   "int", minimum=1),
        OptionSpec("--distill-lr", "--distill and --sparsity fine-tuning: learning rate (default: 1e-3 for models "
                   "under 5M parameters, 1e-4 above).", "float", minimum=0, min_open=True),
        OptionSpec("--distill-hidden", "--distill and --qat: weight of hidden-state matching (each block of the layer "
                   "stack against the teacher's block at the same relative depth) beside the outputs; 0 matches "
                   "outputs only.", "float", 1.0, minimum=0),
        OptionSpec("--device", "Where --distill and --sparsity train (auto: CUDA when torch sees a GPU).", "choice",
                   "auto", ("auto", "cpu", "cuda")),
    )

    def settings(self, values, seed: int) -> DistillSettings | None:
        if values["distill"] and not (values.get("prune") or values.get("student")):
            refuse_without_prune(None)
        return distill_settings(values, seed) if values["distill"] else None

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
