"""Crafted .pt2 archives that run code when unpickled: each leaves a marker file if the payload executes.
Built from a real torch.export archive of a tiny module, with one member replaced."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # creating the file is the trace


def _torch_save_bytes(obj) -> bytes:
    """A torch.save archive whose data.pkl holds `obj` (a weights_only load refuses it, a full one runs it)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps(obj, protocol=2)
            target.writestr(item, data)
    return out.getvalue()


def _base_archive(folder: Path) -> Path:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.linear(x)

    path = folder / "base.pt2"
    torch.export.save(torch.export.export(Tiny().eval(), (torch.zeros(2, 4),)), str(path))
    return path


def _rewrite(base: Path, out: Path, change) -> Path:
    source = zipfile.ZipFile(base)
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            result = change(item.filename, source.read(item.filename))
            if result is not None:
                target.writestr(item.filename, result)
        extra = change("<add>", b"")
        if isinstance(extra, dict):
            for name, data in extra.items():
                target.writestr(name, data)
    return out


def crafted_archives(folder: Path, marker: Path) -> dict[str, Path]:
    """name -> archive; loading any of them without the safety check creates `marker`."""
    base = _base_archive(folder)
    root = zipfile.ZipFile(base).namelist()[0].split("/")[0]
    evil = _torch_save_bytes(_Payload(marker))

    def sample_inputs(name, data):
        return evil if name.endswith("data/sample_inputs/model.pt") else (None if name == "<add>" else data)

    def pickled_weight(name, data):
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("data/weights/weight_0"):
            return evil
        return None if name == "<add>" else data

    def opaque_constant(name, data):
        if name.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                                "tensor_meta": None}}}).encode()
        if name == "<add>":
            return {f"{root}/data/constants/opaque_obj_0": pickle.dumps(_Payload(marker))}
        return data

    return {
        "sample_inputs": _rewrite(base, folder / "sample_inputs.pt2", sample_inputs),
        "pickled_weight": _rewrite(base, folder / "pickled_weight.pt2", pickled_weight),
        "opaque_constant": _rewrite(base, folder / "opaque_constant.pt2", opaque_constant),
    }
