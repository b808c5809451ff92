"""Credentials: only as environment variable *names* or a separate file of mode 0600 (or stricter).

The config never holds a secret, and neither do the supervisor's boot arguments: the executor process
reads the variables or the file itself when it starts. A value that looks like an inline secret in a
free-form table (``params``, ``args``) is refused.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from wispd.config.schema import SECRET_KEY, ConfigIssue

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def inline_secret_issues(file: str, path: str, table: dict[str, Any]) -> list[ConfigIssue]:
    issues = []
    for key, value in table.items():
        if isinstance(value, dict):
            issues += inline_secret_issues(file, f"{path}.{key}", value)
        elif SECRET_KEY.search(key) and not key.endswith("_env") and key != "secrets_file":
            issues.append(ConfigIssue(file, f"{path}.{key}", "***", "no secret inline: name an environment "
                                      "variable (<key>_env) or use a secrets_file of mode 0600"))
    return issues


_TAKEN: dict[str, str] = {}  # variables wispd moved out of its environment into memory (SecretEnv)


def env_value(name: str) -> str:
    """A secret variable's value, wherever it is now (still in the environment, or taken into memory)."""
    return os.environ.get(name) or _TAKEN.get(name, "")


def check_env(file: str, path: str, name: str) -> list[ConfigIssue]:
    if not ENV_NAME.match(name):
        return [ConfigIssue(file, path, name, "an environment variable name (A-Z, 0-9, _)")]
    if not os.environ.get(name) and name not in _TAKEN:
        return [ConfigIssue(file, path, name, f"an environment variable that is set (${name} is empty or unset)")]
    return []


def check_file(file: str, path: str, value: str, base: Path) -> list[ConfigIssue]:
    target = Path(value) if Path(value).is_absolute() else base / value
    try:
        st = target.stat()
    except OSError as exc:
        return [ConfigIssue(file, path, value, f"a readable secrets file ({exc.strerror})")]
    if not stat.S_ISREG(st.st_mode):
        return [ConfigIssue(file, path, value, "a regular file")]
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return [ConfigIssue(file, path, value, f"a file of mode 0600 or stricter (it is {mode:04o}: "
                                               f"run chmod 600 {target})")]
    if not os.access(target, os.R_OK):
        return [ConfigIssue(file, path, value, "a secrets file this user can read")]
    return []


def secret_env_names(config: Any) -> list[str]:
    """Every environment variable the config names as holding a secret (executors' keys, metrics auth)."""
    names = [n for n in config.daemon.metrics_auth_env if n]
    for item in (config.sections.get("executors") or {}).values():
        names += [item[k] for k in ("api_key_env", "secret_env") if item.get(k)]
    return names


class SecretEnv:
    """Secrets named by the config, moved out of wispd's environment into memory before any child exists.

    Children inherit the environment of the forkserver, so a secret left in os.environ would reach every
    strategy and ingestor. Here each value is handed only to the child that needs it (a live executor gets
    its own keys in its boot arguments; the metrics server its token), and ``os.environ`` no longer has
    it. Names that appear later (a reload) are taken the same way when first asked for."""

    def __init__(self, names: list[str]) -> None:
        self._values: dict[str, str] = {}
        for name in names:
            self.take(name)

    def take(self, name: str) -> str:
        if name not in self._values and name in os.environ:
            self._values[name] = _TAKEN[name] = os.environ.pop(name)
        return self._values.get(name, "")

    def values(self, names: list[Any]) -> dict[str, str]:
        return {n: self.take(n) for n in names if isinstance(n, str) and n and self.take(n)}


def read_secret_keys(path: Path) -> set[str]:
    """The key names of a secrets file, without keeping any value (for ``wispd check``)."""
    return set(read_secrets_file(path))


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (# comments allowed). Called by the executor process, never by the supervisor."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out
