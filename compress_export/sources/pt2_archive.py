"""Inspect a torch.export `.pt2` archive before torch loads it. `torch.export.load` unpickles weights and
constants that the archive marks `use_pickle`, unpickles opaque and custom-object constants, retries
sample inputs with `weights_only=False` when the safe load fails, and loads AOTInductor libraries: a
crafted archive runs code on load. Here every member must be one a plain export writes (JSON, raw tensor
bytes, sample inputs that load with `weights_only=True`), or the archive is refused unless trusted."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from ..errors import UsageError

METADATA = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
RAW_TENSOR_PREFIXES = ("weight_", "tensor_")
CODE_CONSTANT_PREFIXES = ("custom_obj_", "opaque_obj_")
MAX_CONFIG_BYTES = 64 << 20


def unsafe_members(path: Path) -> list[str]:
    """What in the archive would run code on load (empty when nothing would)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"{path}: not a torch.export .pt2 archive ({exc})") from None
    with archive:
        problems = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            _, _, member = info.filename.partition("/")
            problem = _member_problem(archive, info, member or info.filename)
            if problem:
                problems.append(problem)
        return problems


def _member_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str) -> str | None:
    folder, _, name = member.rpartition("/")
    if member in METADATA or (folder == "models" and name.endswith(".json")) or member.startswith("extra/"):
        return None
    if folder in ("data/weights", "data/constants"):
        if name.endswith("_config.json"):
            return _config_problem(archive, info, member)
        if name.startswith(RAW_TENSOR_PREFIXES):
            return None  # raw bytes read with as_strided; whether one is pickled is the config's word
        if name.endswith(".pt"):
            return _pickle_problem(archive, info, member)
    if folder == "data/sample_inputs" and name.endswith(".pt"):
        return _pickle_problem(archive, info, member)
    return f"{member} (not part of a plain torch.export archive; it may be compiled code or pickled objects)"


def _config_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str) -> str | None:
    if info.file_size > MAX_CONFIG_BYTES:
        return f"{member} ({info.file_size} bytes of configuration)"
    try:
        config = json.loads(archive.read(info))["config"]
        entries = list(config.items())
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{member} (unreadable configuration)"
    for fqn, entry in entries:
        if not isinstance(entry, dict):
            return f"{member} (unreadable entry {fqn!r})"
        if entry.get("use_pickle") or str(entry.get("path_name", "")).startswith(CODE_CONSTANT_PREFIXES):
            return f"{fqn} ({member} marks it as a pickled object)"
    return None


def _pickle_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str) -> str | None:
    """A torch.save member that only loads with weights_only=False (so torch would retry it unsafely)."""
    import torch

    try:
        torch.load(io.BytesIO(archive.read(info)), map_location="cpu", weights_only=True)
    except Exception:
        return f"{member} (loads only by unpickling arbitrary objects)"
    return None


def check_pt2(path: Path, trust_pickle: bool) -> None:
    if trust_pickle:
        return
    problems = unsafe_members(path)
    if problems:
        raise UsageError(f"{path}: loading it would run code from the file: {problems[0]}"
                         + (f" and {len(problems) - 1} more" if len(problems) > 1 else "")
                         + "; pass --trust-pickle if you trust its author")
