"""The text of a sampler setting: `NAME[:key=value,...]`; values are numbers where they read as numbers."""

from __future__ import annotations

from ..errors import UsageError


def parse_spec(text: str) -> tuple[str, dict]:
    name, _, rest = text.strip().partition(":")
    if name.endswith(".py"):
        return name, {"function": rest or "sample"}
    options = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--sampler {text!r}: {item!r} is not key=value")
        options[key.strip().replace("-", "_")] = _value(value.strip())
    return name.strip().lower(), options


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def take(options: dict, text: str, allowed: dict) -> dict:
    """`allowed` (name -> default) filled from `options`; an unknown key or a wrongly typed value is a usage error."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UsageError(f"--sampler {text!r}: unknown option(s) {', '.join(unknown)}; this sampler takes "
                         f"{', '.join(sorted(allowed))}")
    chosen = dict(allowed)
    for key, value in options.items():
        default = allowed[key]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)):
                raise UsageError(f"--sampler {text!r}: {key} takes a number, not {value!r}")
            value = type(default)(value) if isinstance(default, float) or float(value).is_integer() else value
        elif isinstance(default, str):
            value = str(value)
        chosen[key] = value
    return chosen


def require(ok: bool, text: str, why: str) -> None:
    if not ok:
        raise UsageError(f"--sampler {text!r}: {why}")
