"""A small declarative validator for the TOML configuration.

Why not a library: the errors are the product here. Every problem must name the file, the key path, the
bad value and what was expected, all problems are reported at once, and unknown keys are errors. A table
of ``Field``/``Table``/``MapOf`` specs walked by one function does exactly that in a page of code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wispd.config.issues import ConfigError, ConfigIssue  # noqa: F401 - re-exported
from wispd.config.paths import ipc_endpoint, ipc_path  # noqa: F401 - re-exported

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
SECRET_KEY = re.compile(r"(^|_)(api_?key|secret|password|passphrase|private_?key|token)($|_)", re.I)


Check = Callable[[Any], str | None]  # returns None when fine, else what was expected


@dataclass(frozen=True)
class Field:
    """A scalar or list leaf. ``type`` is one of str, int, float, bool, list, dict (free-form table)."""

    type: type
    expected: str
    required: bool = False
    default: Any = None
    check: Check | None = None
    item_type: type | None = None  # for lists


@dataclass(frozen=True)
class Table:
    """A fixed set of keys; anything else is an unknown-key error."""

    fields: dict[str, Field | Table | MapOf]
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class MapOf:
    """A table of user-named tables (``[strategies.<name>]``), each validated by ``item``."""

    item: Table
    name_expected: str = "a name of lowercase letters, digits, '_' or '-' starting with a letter"


def _type_ok(value: Any, typ: type) -> bool:
    if typ is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


_TYPE_WORD = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
              dict: "a table"}


def validate(data: Any, spec: Table, file: str, path: str = "") -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Validate ``data`` against ``spec``; returns (normalised data with defaults, issues)."""
    issues: list[ConfigIssue] = []
    out = _table(data, spec, file, path, issues)
    return out, issues


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _table(data: Any, spec: Table, file: str, path: str, issues: list[ConfigIssue]) -> dict[str, Any]:
    if not isinstance(data, dict):
        issues.append(ConfigIssue(file, path or "(top level)", data, "a table"))
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in spec.fields:
            known = ", ".join(sorted(spec.fields)) or "no keys"
            shown = "***" if SECRET_KEY.search(str(key)) and not str(key).endswith("_env") else value
            issues.append(ConfigIssue(file, _join(path, key), shown, f"no such key (unknown key; known: {known})"))
    for key, sub in spec.fields.items():
        kpath = _join(path, key)
        if key not in data:
            if isinstance(sub, Field):
                if sub.required:
                    issues.append(ConfigIssue(file, kpath, None, sub.expected, missing=True))
                out[key] = sub.default
            elif isinstance(sub, Table):
                if sub.required:
                    issues.append(ConfigIssue(file, kpath, None, "a table", missing=True))
                out[key] = _table({}, sub, file, kpath, issues)
            else:
                out[key] = {}
            continue
        value = data[key]
        if isinstance(sub, Table):
            out[key] = _table(value, sub, file, kpath, issues)
        elif isinstance(sub, MapOf):
            out[key] = _map(value, sub, file, kpath, issues)
        else:
            out[key] = _leaf(value, sub, file, kpath, issues)
    return out


def _map(data: Any, spec: MapOf, file: str, path: str, issues: list[ConfigIssue]) -> dict[str, Any]:
    if not isinstance(data, dict):
        issues.append(ConfigIssue(file, path, data, "a table of named tables"))
        return {}
    out: dict[str, Any] = {}
    for name, value in data.items():
        if not NAME_RE.match(name):
            issues.append(ConfigIssue(file, _join(path, name), name, spec.name_expected))
            continue
        out[name] = _table(value, spec.item, file, _join(path, name), issues)
    return out


def _leaf(value: Any, spec: Field, file: str, path: str, issues: list[ConfigIssue]) -> Any:
    if not _type_ok(value, spec.type):
        issues.append(ConfigIssue(file, path, value, spec.expected or _TYPE_WORD[spec.type]))
        return spec.default
    original = value
    if spec.type is float:
        value = float(value)
        if not math.isfinite(value):
            issues.append(ConfigIssue(file, path, original, f"a finite number ({spec.expected})"))
            return spec.default
    if spec.type is list and spec.item_type is not None:
        for i, item in enumerate(value):
            if not _type_ok(item, spec.item_type):
                issues.append(ConfigIssue(file, f"{path}[{i}]", item, spec.expected))
                return spec.default
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            issues.append(ConfigIssue(file, path, original, problem))
            return spec.default
    return value


# --------------------------------------------------------------------------- reusable checks

def between(low: float, high: float, unit: str = "seconds", low_open: bool = False) -> Check:
    """A finite number in [low, high] (or (low, high] with ``low_open``): every duration and rate has a sane
    range, so ``inf`` or ``1e-300`` cannot turn a safety off or spin a loop."""
    def check(value: float) -> str | None:
        ok = (value > low if low_open else value >= low) and value <= high
        if ok:
            return None
        lo, hi = _plain(low), _plain(high)
        return f"{unit} above {lo}, up to {hi}" if low_open else f"{unit} from {lo} to {hi}"
    return check


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def positive(value: float) -> str | None:
    return None if value > 0 else "a number greater than 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "a number of 0 or more"


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else "one of " + ", ".join(f'"{c}"' for c in choices)

    return check


def at_least(minimum: float) -> Check:
    def check(value: float) -> str | None:
        return None if value >= minimum else f"a number of at least {minimum}"

    return check


_TCP = re.compile(r"^tcp://(\*|[A-Za-z0-9_.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$")


def endpoint(value: str) -> str | None:
    """A ZeroMQ endpoint we accept: ``ipc:///absolute/path`` or ``tcp://host:port``."""
    if value.startswith("ipc://"):
        return ipc_path(value)
    match = _TCP.match(value)
    if match and 0 < int(match.group(2)) < 65536:
        return None
    return "a ZeroMQ endpoint: ipc:///absolute/path or tcp://host:port with port 1-65535"


def host_port(value: str) -> str | None:
    host, _, port = value.rpartition(":")
    if host and port.isdigit() and 0 <= int(port) < 65536:
        return None
    return "host:port, e.g. 127.0.0.1:9464"


def entry_point(value: str) -> str | None:
    mod, _, func = value.partition(":")
    ident = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
    if func and all(ident.match(p) for p in mod.split(".")) and ident.match(func):
        return None
    return 'an entry point "package.module:function"'
