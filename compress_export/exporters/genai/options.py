"""The knobs of a language-model run: perplexity windows, held-out tokens, GPTQ's calibration tokens and the
length of continuations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...specs import OptionSpec
from ...validators.continuations import GenerationSettings


@dataclass(frozen=True)
class LlmSettings:
    window: int = 512  # perplexity: tokens per window
    stride: int = 256  # and the step between windows (each token is scored once)
    max_tokens: int = 2048  # held-out tokens scored (the first ones of --text-data)
    generation: GenerationSettings = GenerationSettings()
    calibration_tokens: int = 8192  # GPTQ's calibration text for onnx-int4, in windows of `window` tokens

    options: ClassVar[tuple[OptionSpec, ...]] = (
        OptionSpec("--max-new-tokens", "Language models: tokens generated per prompt (greedy).", "int", 32, minimum=1),
        OptionSpec("--ppl-window", "Language models: perplexity window in tokens.", "int", 512, minimum=2),
        OptionSpec("--ppl-stride", "Language models: step between perplexity windows (every token is scored once).",
                   "int", 256, minimum=1),
        OptionSpec("--ppl-tokens", "Language models: held-out tokens scored (the first ones of --text-data).", "int",
                   2048, minimum=2),
        OptionSpec("--calib-tokens", "Language models: tokens of calibration text (--calib-data) GPTQ rounds "
                   "onnx-int4 against.", "int", 8192, minimum=2),
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> LlmSettings:
        return cls(values["ppl_window"], values["ppl_stride"], values["ppl_tokens"],
                   GenerationSettings(max_new_tokens=values["max_new_tokens"]), values["calib_tokens"])

    def to_dict(self) -> dict:
        return {"window": self.window, "stride": self.stride, "max_tokens": self.max_tokens,
                "calibration_tokens": self.calibration_tokens,
                "max_new_tokens": self.generation.max_new_tokens, "long_prompt_tokens": self.generation.long_tokens}
