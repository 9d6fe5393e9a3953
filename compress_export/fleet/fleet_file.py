"""The fleet file: models (each a model and its data, as export options), recipes (the recipe format) and which
recipes apply to which model. Expanded into jobs, each one ordinary `export` run, and checked whole before anything
runs: an unknown key, a missing model, a setting that does not parse or a target that does not exist end the sweep
with one line (exit 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..cli.recipe_file import read_yaml, recipe_values
from ..errors import UsageError

SECTIONS = ("models", "recipes", "matrix")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a folder name on every file system
SET_BY_SWEEP = ("out",)
RESERVED = ("fleet.json", "fleet.md")  # what the sweep writes beside the models' folders


@dataclass(frozen=True)
class FleetJob:
    """One model x one recipe: `values` are export's parameters by name (click's default_map), paths absolute."""

    model: str
    recipe: str
    values: dict = field(hash=False)
    trains: bool = False  # a compression step trains: the job may take a GPU

    @property
    def name(self) -> str:
        return f"{self.model}/{self.recipe}"


@dataclass(frozen=True)
class Fleet:
    path: Path
    jobs: tuple[FleetJob, ...]


def read_fleet(path: Path, command: click.Command) -> Fleet:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such fleet file")
    loaded = read_yaml(path, "fleet file")
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: a fleet file is a mapping with models:, recipes: and optionally matrix:")
    unknown = [str(key) for key in loaded if key not in SECTIONS]
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; a fleet file has {', '.join(SECTIONS)}")
    models = _named_mappings(loaded.get("models"), "models", path)
    for name in models:
        if name in RESERVED or (name.startswith("pareto-") and name.endswith(".png")):
            raise UsageError(f"{path}: models.{name}: the name of a file the sweep writes in --out; rename it")
    recipes = _named_mappings(loaded.get("recipes"), "recipes", path)
    folder = path.parent
    model_values = {name: _values(entry, f"{path}: models.{name}", command, folder) for name, entry in models.items()}
    recipe_values_ = {name: _values(entry, f"{path}: recipes.{name}", command, folder)
                      for name, entry in recipes.items()}
    for name, values in model_values.items():
        if "model" not in values:
            raise UsageError(f"{path}: models.{name} names no model (model: PATH)")
        _check_model(str(values["model"]), f"{path}: models.{name}")
    for name, values in recipe_values_.items():
        if "model" in values:
            raise UsageError(f"{path}: recipes.{name} sets model; models go under models:")
    jobs = []
    for model, wanted in _matrix(loaded.get("matrix"), models, recipes, path).items():
        for recipe in wanted:
            jobs.append(_job(model, recipe, model_values[model], recipe_values_[recipe], command, path))
    return Fleet(path, tuple(jobs))


def _named_mappings(section, key: str, path: Path) -> dict[str, dict]:
    if not isinstance(section, dict) or not section:
        raise UsageError(f"{path}: {key}: is a mapping of names to settings, and it is missing or empty")
    for name, entry in section.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise UsageError(f"{path}: {key}.{name}: a name is letters, digits, '.', '_' or '-' (it names a folder)")
        if entry is None:
            section[name] = {}
        elif not isinstance(entry, dict):
            raise UsageError(f"{path}: {key}.{name} is a mapping of settings, not {type(entry).__name__}")
    return section


def _values(entry: dict, where: str, command: click.Command, folder: Path) -> dict:
    values = recipe_values(entry, where, command, folder)
    for name in SET_BY_SWEEP:
        if name in values:
            raise UsageError(f"{where}: {name} is set by the sweep (--out DIR, then DIR/<model>/<recipe>/)")
    return values


def _check_model(model: str, where: str) -> None:
    """A file or folder must exist; a factory `path/file.py:name` needs its file (`package.module:name` is imported
    when the job runs)."""
    if Path(model).exists():
        return
    head, _, tail = model.rpartition(":")
    if head and tail.isidentifier():
        if head.endswith(".py") and not Path(head).is_file():
            raise UsageError(f"{where}: model {model}: {head} does not exist")
        return
    raise UsageError(f"{where}: model {model} does not exist")


def _matrix(matrix, models: dict, recipes: dict, path: Path) -> dict[str, list[str]]:
    """Which recipes each model runs: every recipe unless matrix: names some."""
    if matrix is None:
        return {model: list(recipes) for model in models}
    if not isinstance(matrix, dict):
        raise UsageError(f"{path}: matrix: maps a model's name to a list of recipe names")
    chosen = {model: list(recipes) for model in models}
    for model, wanted in matrix.items():
        if model not in models:
            raise UsageError(f"{path}: matrix.{model}: no such model (models: {', '.join(models)})")
        wanted = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(wanted, list) or not wanted:
            raise UsageError(f"{path}: matrix.{model}: a list of recipe names")
        missing = [str(name) for name in wanted if name not in recipes]
        if missing:
            raise UsageError(f"{path}: matrix.{model}: no recipe {missing[0]!r} (recipes: {', '.join(recipes)})")
        chosen[model] = list(dict.fromkeys(wanted))
    return chosen


def _job(model: str, recipe: str, model_values: dict, recipe_values_: dict, command: click.Command,
         path: Path) -> FleetJob:
    where = f"{path}: {model} x {recipe}"
    both = sorted(set(model_values) & set(recipe_values_))
    if both:
        raise UsageError(f"{where}: {both[0].replace('_', '-')} is set in models.{model} and in recipes.{recipe}")
    values = {**model_values, **recipe_values_}
    params = parsed(command, values, where)
    _check_targets(str(params["targets"]), where)
    from ..specs import TensorSpec

    try:
        for text in params.get("inputs") or ():
            TensorSpec.parse(text)
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None
    from ..compression import build_steps

    try:
        trains = bool(build_steps(params, int(params.get("seed") or 0)))
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None
    return FleetJob(model, recipe, values, trains)


def parsed(command: click.Command, values: dict, where: str) -> dict:
    """Export's parameters as its command line would parse them: every value converted and checked."""
    try:
        with command.make_context("export", [], default_map=values, resilient_parsing=False) as ctx:
            return dict(ctx.params)
    except click.ClickException as error:
        raise UsageError(f"{where}: {error.format_message()}") from None


def _check_targets(text: str, where: str) -> None:
    from ..exporters.catalog import TARGETS

    known = {name for family in TARGETS.values() for name in family}
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"{where}: to: names no target")
    for name in names:
        if name not in known:
            raise UsageError(f"{where}: unknown target {name!r} (`compress-export targets` lists them)")
