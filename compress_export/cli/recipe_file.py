"""Recipes: one versioned YAML file per model holding what `export` takes. A key is an export option's long
name (`to`, `calib-data`, `min-cosine`, `calibrator`) or `model`; mappings may group keys in sections of any
name (`data:`, `gates:`, `trt-int8:`), one level deep. Unknown keys are errors, never dropped. Options on the
command line override the file. Every bundle keeps the resolved recipe (`recipe.yaml`: every setting, paths
absolute), so `compress-export run BUNDLE/recipe.yaml --out NEW` runs the same job again."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..errors import UsageError

# Settings of how a run prints or where it keeps caches, not of the job: a resolved recipe leaves them out.
NOT_RECIPE = ("as_json", "quiet", "verbose", "stats_cache")


def option_names(command: click.Command) -> dict[str, click.Parameter]:
    """Every name a recipe may use for a parameter of `command`: its long flags and its own name."""
    names: dict[str, click.Parameter] = {}
    for param in command.get_params(click.Context(command)):
        names[param.name.replace("_", "-")] = param
        for flag in getattr(param, "opts", []):
            if flag.startswith("--"):
                names[flag[2:]] = param
    return names


def read_recipe(path: Path, command: click.Command) -> dict[str, object]:
    """The recipe at `path` as {parameter name: value}, for click's default_map."""
    loaded = read_yaml(path, "recipe")
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: a recipe is a mapping of settings (model: ..., to: ..., calib-data: ...)")
    return recipe_values(loaded, str(path), command, Path(path).parent)


def read_yaml(path: Path, what: str):
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the {what} ({getattr(exc, 'strerror', None) or exc})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def recipe_values(loaded: dict, where: str, command: click.Command, folder: Path) -> dict[str, object]:
    """A recipe mapping as {parameter name: value}; `where` names it in errors, relative paths that exist under
    `folder` are taken from there."""
    names = option_names(command)
    values: dict[str, object] = {}
    for key, value in _flatten(loaded, where):
        param = names.get(str(key).replace("_", "-"))
        if param is None or param.name in NOT_RECIPE:
            close = difflib.get_close_matches(str(key).replace("_", "-"), list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{where}: unknown setting {key!r}{hint}; a key is an export option's long name")
        if param.name in values:
            raise UsageError(f"{where}: {key!r} is set twice")
        values[param.name] = _value(param, value, folder, where)
    return values


def _flatten(mapping: dict, path: str):
    for key, value in mapping.items():
        if isinstance(value, dict):
            for inner_key, inner in value.items():
                if isinstance(inner, dict):
                    raise UsageError(f"{path}: sections nest one level deep ({key}.{inner_key} is a mapping)")
                yield inner_key, inner
        else:
            yield key, value


def key_name(param: click.Parameter) -> str:
    return param.name.replace("_", "-")


def _value(param: click.Parameter, value, folder: Path, where: str):
    """YAML lists become comma lists (`to`) or repeated options; a relative path that exists beside the recipe
    is taken from there."""
    if isinstance(value, list):
        if any(isinstance(item, (list, dict)) for item in value):  # meaningless, and aliases nest them exponentially
            raise UsageError(f"{where}: {key_name(param)} takes a list of plain values, not of lists or mappings")
        value = tuple(str(item) for item in value) if param.multiple else ",".join(str(item) for item in value)
    elif param.multiple and isinstance(value, str):  # one value of a repeatable option
        value = (value,)
    if isinstance(value, str) and (param.name == "model" or isinstance(param.type, click.Path)):
        beside = folder / value
        if not Path(value).is_absolute() and beside.exists():
            return str(beside.resolve())
    return value


def resolved_recipe(params: dict) -> dict:
    """Every setting of a run, JSON- and YAML-ready, paths absolute where they exist here."""
    resolved = {}
    for name, value in params.items():
        if name in NOT_RECIPE:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str) and Path(value).exists() and (name == "model" or "/" in value or "." in value):
            value = str(Path(value).resolve())
        resolved[name.replace("_", "-") if name != "targets" else "to"] = value
    return resolved
