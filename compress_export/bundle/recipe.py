"""A bundle's recipe.yaml: every setting of the run that wrote it (paths absolute), which `compress-export run`
takes back to run the same job again."""

from __future__ import annotations

RECIPE_FILE = "recipe.yaml"


def recipe_yaml(resolved: dict) -> str:
    import yaml

    header = "# compress-export recipe: `compress-export run recipe.yaml --out DIR` runs this job again\n"
    return header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
