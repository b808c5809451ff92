"""Configuration: one TOML file, validated completely before anything starts.

The names below load on first use (PEP 562): ``wispctl`` reads only where a daemon's control socket is
(``wispd.config.paths``), and importing every section's schema and builder for that was most of a
command's run time."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "EX_CONFIG": "wispd.config.loader", "load_config": "wispd.config.loader",
    "ChildSpec": "wispd.config.model", "Config": "wispd.config.model", "DaemonConfig": "wispd.config.model",
    "Limits": "wispd.config.model", "RestartPolicy": "wispd.config.model",
    "ConfigError": "wispd.config.issues", "ConfigIssue": "wispd.config.issues",
}

__all__ = [
    "EX_CONFIG", "ChildSpec", "Config", "ConfigError", "ConfigIssue", "DaemonConfig", "Limits", "RestartPolicy",
    "load_config",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'wispd.config' has no attribute {name!r}")
    value = getattr(import_module(where), name)
    globals()[name] = value
    return value
