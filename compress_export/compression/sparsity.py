"""`--sparsity 2:4`: the weights of every eligible layer masked to the 2:4 pattern and fine-tuned by distillation
from the original (the masks kept through training). The FP32 ONNX says so in its metadata, so trt-int8 checks the
pattern with its linter and builds the engine with sparse weights where TensorRT exists. Every target is built from
the sparse model; only sparse tensor cores run it faster."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..errors import UsageError
from ..specs import OptionSpec
from .base import Compressed, CompressionMethod
from .chain import stage_row, stage_table, starting_point, torch_module_of, trained_stage
from .distill_torch import DistillSettings
from .sparsity_torch import PATTERNS
from .training import step_bar, total_steps, training_line, training_record


@dataclass(frozen=True)
class SparsitySettings:
    pattern: str = "2:4"
    tune: DistillSettings = field(default_factory=DistillSettings)  # the --distill-* options


class TwoFourSparsity(CompressionMethod):
    name = "sparsity"
    title = "2:4 sparsity"
    options = (OptionSpec("--sparsity", "Mask the weights of every Linear/convolution whose input width is a multiple "
                          "of 4 to the 2:4 pattern and fine-tune by distillation from the original (--distill-* "
                          "settings); trt-int8 lints the pattern and builds with sparse weights (faster on sparse "
                          "tensor cores only).", "choice", choices=PATTERNS),)

    def settings(self, values, seed: int) -> SparsitySettings | None:
        from .distill import distill_settings

        pattern = values["sparsity"]
        return SparsitySettings(pattern, distill_settings(values, seed)) if pattern else None

    def apply(self, job, settings: SparsitySettings) -> Compressed:
        from ..exporters.tensorrt.lint import SPARSITY_KEY
        from ..graphs.onnx_io import set_metadata
        from ..sources.torch_source import TorchModel, differentiable_forward
        from .distill_torch import distill
        from .sparsity_torch import apply_masks, masks_2_4

        if any(name == "qat" for name, _ in job.config.compression):
            raise UsageError("--sparsity 2:4 with --qat: QAT's fine-tuning would refill the masked weights; "
                             "run one of them")
        model, _, module = starting_point(job, "--sparsity")
        teacher = torch_module_of(job.model, "--sparsity")
        sparse = copy.deepcopy(module).eval()
        masks = masks_2_4(sparse)
        if not masks:
            raise UsageError("--sparsity 2:4 found no Linear or ungrouped convolution whose input width is a "
                             "multiple of 4")
        apply_masks(sparse, masks)
        masked = TorchModel(sparse, model.description, model.sha256, model.inputs)
        masked_row = stage_row(job, "2:4 masked", masked)
        total = total_steps(settings.tune.steps, settings.tune.epochs, job.train)
        with step_bar(total, "2:4 fine-tune", job.config.progress) as on_step:
            tuned_module, result = distill(sparse, teacher, differentiable_forward(job.model), job.train,
                                           settings.tune, on_step, total, constrain=lambda m: apply_masks(m, masks))
        tuned = TorchModel(tuned_module, model.description, model.sha256, model.inputs)
        weights = sum(layer.weight.numel() for name, layer in tuned_module.named_modules() if name in masks)
        section = {"settings": {"pattern": settings.pattern, **settings.tune.__dict__}, "layers": len(masks),
                   "sparse_weights": weights, "zeroed_weights": weights // 2, **training_record(result)}
        done = trained_stage(job, tuned, section, "model.sparse.onnx", "2:4 fine-tuned", result.losses,
                             ("sparsity_loss.png", "2:4 fine-tuning"), (masked_row,))
        set_metadata(done.fp32_onnx, {SPARSITY_KEY: settings.pattern})
        return done

    def markdown(self, section: dict, report) -> list[str]:
        return [f"{section['layers']} layers masked to 2:4 ({section['zeroed_weights']:,} of "
                f"{section['sparse_weights']:,} weights zero), fine-tuned by distillation from the original: "
                f"{training_line(section, 'sparsity_loss.png')}. Dense runtimes run it at dense speed: the gain needs "
                "TensorRT on sparse tensor cores (Ampere or later), where trt-int8 builds with sparse weights.", "",
                *stage_table(section["stages"], report)]
