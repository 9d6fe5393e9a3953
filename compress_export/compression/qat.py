"""`--qat`: quantization-aware fine-tuning by self-distillation, for PyTorch modules (bound for the
ONNX INT8 targets) and Keras models (bound for tflite-int8). The report puts the same target built by
post-training quantization of the original model beside it."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..specs import OptionSpec
from .base import Compressed, CompressionMethod, current_model
from .qat_settings import QatSettings, plot_losses
from .training import step_bar, total_steps


class QuantizationAwareTraining(CompressionMethod):
    name = "qat"
    model_kinds = ("torch", "keras")
    title = "QAT"
    options = (
        OptionSpec("--qat", "Quantization-aware fine-tuning before INT8 export (PyTorch factories to "
                   "onnx-int8/trt-int8, Keras models to tflite-int8): the FP32 model teaches its fake-quantized copy, "
                   "no labels needed.",
                   "flag"),
        OptionSpec("--qat-epochs", "--qat: passes over the data.", "int", 3, minimum=1),
        OptionSpec("--qat-steps", "--qat: stop after this many steps instead.", "int", minimum=1),
        OptionSpec("--lr", "--qat: learning rate of the weights (activation ranges learn at 10x).", "float", 1e-5,
                   minimum=0, min_open=True),
        OptionSpec("--alpha", "--qat with labels: weight of the task loss against distillation.", "float", 0.5,
                   minimum=0, maximum=1),
    )

    def settings(self, values, seed: int) -> QatSettings | None:
        if not values["qat"]:
            return None
        return QatSettings(epochs=values["qat_epochs"], steps=values["qat_steps"], lr=values["lr"],
                           alpha=values["alpha"], seed=seed, hidden=values["distill_hidden"])

    def apply(self, job, settings: QatSettings) -> Compressed:
        model, _, _ = current_model(job)
        if model.framework == "keras":
            return self._keras(job, settings)
        if model.framework != "torch" or getattr(model, "exported", None) is not None:
            raise UsageError("--qat fine-tunes a PyTorch nn.Module or a Keras model: give a factory (file.py:factory), "
                             f"not a {model.framework if model.framework != 'torch' else '.pt2'} model")
        if job.ranges is None:
            raise UsageError("--qat for PyTorch models applies to onnx-int8 and trt-int8 (tflite-int8 takes QAT from "
                             "Keras models)")
        return self._torch(job, settings)

    def _torch(self, job, settings: QatSettings) -> Compressed:
        from ..calibration.calibrate import calibrate_onnx
        from ..exporters.onnx.fp32 import export_fp32
        from ..sources.torch_source import TorchModel, differentiable_forward
        from .qat_torch import fine_tune, match_inputs

        model, fp32_before, ranges = current_model(job)  # the pruned/distilled model where those steps ran
        forward = differentiable_forward(model)
        sample = next(job.calib.batches())
        matched = match_inputs(model.module, fp32_before, list(ranges.ranges), sample, forward)
        with _progress(job, settings) as step:
            student, result = fine_tune(model.module, forward, matched, ranges, job.train, settings, on_step=step)
        tuned = TorchModel(student, model.description, model.sha256, model.inputs)
        fp32 = job.work / "model.qat.onnx"
        export_fp32(tuned, fp32, sample)
        table = calibrate_onnx(fp32, job.calib, job.calibration_recipe, progress=False)
        renamed = match_inputs(student, fp32, list(table.ranges), sample, forward)
        learned = {renamed[name]: result.ranges[tensor] for name, tensor in matched.items()
                   if name in renamed and tensor in result.ranges}
        return Compressed(model=tuned, section=_section(job, settings, result, len(learned)),
                          applies_to=lambda target: target.ranges == "onnx", fp32_onnx=fp32,
                          ranges=table.with_ranges(f"qat+{table.method}", learned), ranges_space="onnx",
                          files=_loss_plot(result.losses), compare_key="ptq")

    def _keras(self, job, settings: QatSettings) -> Compressed:
        from ..exporters.tflite.keras_ranges import as_functional, calibrate_keras
        from ..sources.keras_source import KerasModel
        from .qat_keras import fine_tune_keras

        onnx_ranged = [target.name for target in job.targets if target.ranges == "onnx"]
        if onnx_ranged:
            raise UsageError(f"--qat for Keras models applies to tflite-int8, not to {', '.join(onnx_ranged)}")
        original = as_functional(job.model.model)
        table = calibrate_keras(original, job.calib, job.config.recipe, job.model.sha256)
        with _progress(job, settings) as step:
            tuned, result = fine_tune_keras(original, dict(table.ranges), job.train, settings, on_step=step)
        model = KerasModel(tuned, Path(job.model.description))
        return Compressed(model=model, section=_section(job, settings, result, len(result.ranges)),
                          applies_to=lambda target: target.ranges == "source",
                          ranges=table.with_ranges(f"qat+{table.method}", result.ranges), ranges_space="source",
                          files=_loss_plot(result.losses), compare_key="ptq")

    def skipped_note(self, target) -> str | None:
        return ("--qat was not applied to this target: PyTorch models get QAT on onnx-int8 and trt-int8, Keras "
                "models on tflite-int8; this artifact is post-training quantized")

    def markdown(self, section: dict, report) -> list[str]:
        settings = section["settings"]
        lines = [f"{section['steps']} steps in {section['seconds']:.0f} s (lr {settings['lr']:g}, seed "
                 f"{settings['seed']}, data: {section['train_data']}"
                 f"{', with labels' if section['labels'] else ', no labels'}); "
                 f"{section['fake_quantized_activations']} activations fake-quantized, {section['learned_ranges']} "
                 f"learned ranges exported; {section.get('hidden_pairs', 0)} block outputs matched beside the outputs. "
                 f"Distillation loss {section['loss_first']:.4g} -> "
                 f"{section['loss_last']:.4g} (`qat_loss.png`).", "",
                 "| | " + " | ".join(report.parity) + " | accuracy | size |",
                 "|---|" + "---|" * (len(report.parity) + 2)]

        def row(name: str, parity: dict, metrics: dict, size) -> str:
            cosines = " | ".join(f"{stats['cosine']:.4f}" for stats in parity.values())
            accuracy = f"{metrics['candidate']['accuracy']:.4f}" if metrics else "-"
            return f"| {name} | {cosines} | {accuracy} | {size / 1024:.0f} KB |"

        ptq = section["ptq"]
        lines.append(row("PTQ", ptq["parity"], ptq["metrics"], ptq["size_bytes"]))
        lines.append(row("QAT", report.parity, report.metrics, report.artifact["size_bytes"]))
        return lines


def _section(job, settings: QatSettings, result, learned: int) -> dict:
    return {**result.to_dict(settings), "train_data": job.config.train_data or "the calibration data",
            "labels": job.train.has_labels, "learned_ranges": learned}


def _loss_plot(losses: list[float]) -> dict:
    kept = list(losses)
    return {"qat_loss.png": lambda path: plot_losses(kept, path)}


def _progress(job, settings: QatSettings):
    return step_bar(total_steps(settings.steps, settings.epochs, job.train), "QAT", job.config.progress)
