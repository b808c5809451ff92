"""What a config error is: one ``ConfigIssue`` per problem, all of them in one ``ConfigError``.

Kept apart from the validator (``schema``) so that ``wispctl``, which reads only where a daemon's control
socket is, can report a bad ``[daemon]`` section without importing the schema machinery and dataclasses.
"""

from __future__ import annotations

from typing import Any


class ConfigIssue:
    """One validation problem, rendered as ``file: key.path = value: expected ...``."""

    __slots__ = ("file", "path", "value", "expected", "missing")

    def __init__(self, file: str, path: str, value: Any, expected: str, missing: bool = False) -> None:
        self.file = file
        self.path = path
        self.value = value
        self.expected = expected
        self.missing = missing

    def _key(self) -> tuple[Any, ...]:
        return (self.file, self.path, self.value, self.expected, self.missing)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigIssue) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.file, self.path, self.expected, self.missing))

    def __repr__(self) -> str:
        return (f"ConfigIssue(file={self.file!r}, path={self.path!r}, value={self.value!r}, "
                f"expected={self.expected!r}, missing={self.missing!r})")

    def __str__(self) -> str:
        if self.missing:
            return f"{self.file}: {self.path}: missing required key (expected {self.expected})"
        return f"{self.file}: {self.path} = {_show(self.value)}: expected {self.expected}"


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).replace("'", '"')
    if isinstance(value, bool):
        text = "true" if value else "false"
    if isinstance(value, str):
        text = '"' + value.replace('"', '\\"') + '"'
    return text if len(text) <= 80 else text[:77] + "..."


class ConfigError(Exception):
    """Raised with every issue found; ``wispd run`` prints them all and exits 78."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
