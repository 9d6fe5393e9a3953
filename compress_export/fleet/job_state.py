"""A fleet job's folder, OUT/<model>/<recipe>/: the recipe it runs (job.yaml), what the export wrote (a bundle per
target, summary.json) and the job's record (job.json: its key, attempts, node, exit code). The key is a digest of
everything that decides the bundles: every setting, the bytes of every file a setting names, the tool's version.
A job whose record has the same key, that completed, and whose bundles pass `validate`'s hash check is done."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from .. import __version__
from ..bundle.manifest import verify_bundle
from ..bundle.writer import write_text_atomic
from ..errors import EXIT_GATE_FAILED, EXIT_OK, CompressExportError
from ..util.hashing import sha256_file

RECORD = "job.json"
RECIPE = "job.yaml"
# What a run killed mid-way leaves: the pipeline's work folder and bundle folders not yet renamed into place.
DEBRIS = (".ce-work-*", ".*.partial-*", ".*.old-*", ".ce-probe-*", ".*.partial")


def job_key(values: dict) -> str:
    digest = hashlib.sha256(json.dumps({"version": __version__, "values": _jsonable(values)}, sort_keys=True)
                            .encode())
    for name in sorted(values):
        value = values[name]
        if isinstance(value, str) and Path(value).exists():
            digest.update(f"{name}={_content_digest(Path(value))}".encode())
    return digest.hexdigest()


def _jsonable(values: dict) -> dict:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


def _content_digest(path: Path) -> str:
    """A file's sha256; a folder's from its files' names and digests."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(item for item in path.rglob("*") if item.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}:{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def write_job_recipe(folder: Path, values: dict) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    text = ("# one job of a compress-export fleet: `compress-export run job.yaml --out DIR` runs it alone\n"
            + yaml.safe_dump({name.replace("_", "-"): value for name, value in _jsonable(values).items()},
                             sort_keys=False, allow_unicode=True))
    write_text_atomic(folder / RECIPE, text)
    return folder / RECIPE


def read_record(folder: Path) -> dict:
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(folder: Path, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")


def finished(folder: Path, key: str) -> bool:
    """Done before with the same key, completed (passed or a gate failed), and every bundle intact."""
    record = read_record(folder)
    if record.get("key") != key or record.get("exit_code") not in (EXIT_OK, EXIT_GATE_FAILED):
        return False
    bundles = record.get("bundles") or []
    if not bundles:
        return False
    try:
        for name in bundles:
            verify_bundle(folder / name)
    except CompressExportError:
        return False
    return True


def clear_debris(folder: Path) -> list[str]:
    """Remove what an interrupted attempt left in the job's own folder (nothing else writes there)."""
    removed = []
    if not folder.is_dir():
        return removed
    for pattern in DEBRIS:
        for path in folder.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
