"""`--student every:K | file.py:factory`: a smaller model for `--distill` to train. `every:K` keeps every K-th
block of the model's layer stack (its largest list of same-type blocks: a transformer's encoder layers) and
drops the rest; a factory builds any student that takes the same inputs. Either starts from the teacher's
weights where names and shapes match."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..specs import OptionSpec
from .base import Compressed, CompressionMethod
from .chain import finish, stage_row, stage_table, stages_before, starting_point, torch_module_of


@dataclass(frozen=True)
class StudentSettings:
    spec: str  # "every:K" or "file.py:factory" / "package.module:factory"


def layer_stack(module):
    """The largest nn.ModuleList whose blocks all share one type, with its owner and attribute name."""
    import torch

    stacks = [(owner, name, child) for owner in module.modules() for name, child in owner.named_children()
              if isinstance(child, torch.nn.ModuleList) and len(child) > 1 and len({type(b) for b in child}) == 1]
    return max(stacks, key=lambda found: len(found[2]), default=None)


def keep_every(module, k: int) -> tuple[int, int]:
    """Keep blocks 0, k, 2k, ... of the layer stack in place; returns (blocks before, after)."""
    import torch

    found = layer_stack(module)
    if found is None:
        raise UsageError("--student every:K needs a stack of repeated blocks (an nn.ModuleList of one block type); "
                         "give a factory instead (--student file.py:factory)")
    owner, name, blocks = found
    kept = torch.nn.ModuleList(list(blocks)[::k])
    if len(kept) == len(blocks):
        raise UsageError(f"--student every:{k} keeps all {len(blocks)} blocks: give K > 1")
    setattr(owner, name, kept)
    for part in module.modules():  # transformers' models read their depth from the config
        config = getattr(part, "config", None)
        if config is not None and hasattr(config, "num_hidden_layers"):
            config.num_hidden_layers = len(kept)
    return len(blocks), len(kept)


def initialise_from(student, teacher) -> int:
    """Copy every teacher tensor whose name and shape the student shares; returns how many."""
    theirs = teacher.state_dict()
    mine = student.state_dict()
    shared = {name: value for name, value in theirs.items() if name in mine and mine[name].shape == value.shape}
    student.load_state_dict(shared, strict=False)
    return len(shared)


class SmallerStudent(CompressionMethod):
    name = "student"
    title = "Student"
    makes_student = True
    model_kinds = ("torch", "language-model")
    options = (OptionSpec("--student", "A smaller model for --distill: every:K keeps every K-th block of the layer "
                          "stack (a transformer's layers); a factory builds one that takes the same inputs. Both start "
                          "from the original's weights where names and shapes match.",
                          metavar="every:K|FILE.py:FACTORY"),)

    def settings(self, values, seed: int) -> StudentSettings | None:
        return StudentSettings(values["student"]) if values["student"] else None

    def refuse_for(self, kind: str, settings: StudentSettings) -> None:
        if kind == "language-model" and not re.fullmatch(r"every:\d+", settings.spec):
            raise UsageError("--student on a language model: give every:K (keep every K-th decoder layer); a factory "
                             "student is for PyTorch modules")

    def apply(self, job, settings: StudentSettings) -> Compressed:
        from ..sources.torch_source import TorchModel
        model, _, teacher = starting_point(job, "--student")
        match = re.fullmatch(r"every:(\d+)", settings.spec)
        if match:
            student = copy.deepcopy(teacher).eval()
            before, after = keep_every(student, int(match.group(1)))
            detail = {"kind": "layer drop", "blocks_before": before, "blocks_after": after}
        else:
            from ..sources.loader import load_model

            built = torch_module_of(load_model(settings.spec, inputs=model.inputs), "--student")
            student = copy.deepcopy(built).eval()
            detail = {"kind": "factory", "initialised_tensors": initialise_from(student, teacher)}
        tuned = TorchModel(student, model.description, model.sha256, model.inputs)
        parameters = sum(p.numel() for p in student.parameters())
        section = {"settings": settings.__dict__, **detail, "parameters": parameters}
        done = finish(job, tuned, section, "model.student.onnx")
        done.section["stages"] = [*stages_before(job), stage_row(job, "student", tuned, done.fp32_onnx)]
        return done

    def markdown(self, section: dict, report) -> list[str]:
        if section["kind"] == "layer drop":
            what = f"kept {section['blocks_after']} of {section['blocks_before']} blocks"
        else:
            what = f"built by {section['settings']['spec']}, {section['initialised_tensors']} tensors from the teacher"
        return [f"Student: {what}, {section['parameters']:,} parameters.", "", *stage_table(section["stages"], report)]
