"""The ``[daemon]`` section: directories, endpoints, logging and the defaults every child inherits.

Directory defaults follow systemd first (``RUNTIME_DIRECTORY``, ``STATE_DIRECTORY``, ``LOGS_DIRECTORY`` are
set by the unit), then XDG, then a per-user fallback, so the same config runs in development and under
systemd. Relative paths are relative to the config file's directory, never to the caller's cwd.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wispd.config.model import DaemonConfig, Limits
from wispd.config.schema import (
    ConfigIssue,
    Field,
    Table,
    at_least,
    host_port,
    ipc_endpoint,
    non_negative,
    one_of,
    positive,
)

SPEC = Table(
    {
        "run_dir": Field(str, "a directory path (holds the ipc sockets and the lock)"),
        "state_dir": Field(str, "a directory path (desired state, journals)"),
        "log_dir": Field(str, "a directory path (per-child log files)"),
        "log_level": Field(str, "a log level", default="info",
                           check=one_of("debug", "info", "warning", "error")),
        "log_max_bytes": Field(int, "bytes, at least 4096", default=10 * 1024 * 1024, check=at_least(4096)),
        "log_backups": Field(int, "a count of 0 or more", default=5, check=non_negative),
        "heartbeat_interval": Field(float, "seconds > 0", default=1.0, check=positive),
        "heartbeat_timeout": Field(float, "seconds > 0", default=10.0, check=positive),
        "drain_timeout": Field(float, "seconds of 0 or more", default=10.0, check=non_negative),
        "stop_timeout": Field(float, "seconds > 0", default=5.0, check=positive),
        "sample_interval": Field(float, "seconds > 0", default=1.0, check=positive),
        "python_path": Field(list, "a list of directory paths", default=[], item_type=str),
        "control_endpoint": Field(str, "an ipc:// endpoint", check=ipc_endpoint),
        "metrics": Table({
            "enabled": Field(bool, "true or false", default=True),
            "bind": Field(str, "host:port for /metrics and /health (port 0 = any free port)",
                          default="127.0.0.1:9464", check=host_port),
        }),
    },
    doc="the daemon itself",
)


def _default_dir(env: str, xdg: str, xdg_fallback: str, leaf: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env].split(":")[0])
    base = os.environ.get(xdg)
    if base:
        return Path(base) / "wispd"
    if xdg == "XDG_RUNTIME_DIR":
        return Path(f"/tmp/wispd-{os.getuid()}")
    return Path.home() / xdg_fallback / "wispd" / leaf if leaf else Path.home() / xdg_fallback / "wispd"


def _resolve(base: Path, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _dir_problem(path: Path) -> str | None:
    """None if we can create or write this directory; else what is wrong with it."""
    if path.exists():
        if not path.is_dir():
            return "a directory (this path exists and is not one)"
        if not os.access(path, os.W_OK | os.X_OK):
            return "a writable directory (permission denied)"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"a directory that can be created (no write access to {parent})"
    return None


def build(raw: dict[str, Any], config_path: Path, issues: list[ConfigIssue]) -> DaemonConfig:
    file = str(config_path)
    base = config_path.parent
    run_dir = _resolve(base, raw["run_dir"]) or _default_dir("RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR", "", "")
    state_dir = _resolve(base, raw["state_dir"]) or _default_dir(
        "STATE_DIRECTORY", "XDG_STATE_HOME", ".local/state", "")
    log_dir = _resolve(base, raw["log_dir"]) or (
        Path(os.environ["LOGS_DIRECTORY"].split(":")[0]) if os.environ.get("LOGS_DIRECTORY") else state_dir / "log")
    for key, path in (("run_dir", run_dir), ("state_dir", state_dir), ("log_dir", log_dir)):
        problem = _dir_problem(path)
        if problem:
            issues.append(ConfigIssue(file, f"daemon.{key}", str(path), problem))
    python_path = []
    for i, entry in enumerate(raw["python_path"] or []):
        path = _resolve(base, entry)
        if path is None or not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
            issues.append(ConfigIssue(file, f"daemon.python_path[{i}]", entry, "a readable directory"))
        else:
            python_path.append(str(path))
    control = raw["control_endpoint"] or f"ipc://{run_dir}/control.sock"
    link = f"ipc://{run_dir}/link.sock"
    for key, endpoint in (("control_endpoint", control), ("run_dir", link)):
        if len(endpoint.encode()) - len("ipc://") > 107:
            issues.append(ConfigIssue(file, f"daemon.{key}", endpoint,
                                      "a path shorter than 108 bytes (unix socket limit); use a shorter run_dir"))
    defaults = Limits(
        heartbeat_timeout=raw["heartbeat_timeout"],
        drain_timeout=raw["drain_timeout"],
        stop_timeout=raw["stop_timeout"],
    )
    return DaemonConfig(
        config_path=config_path,
        run_dir=run_dir,
        state_dir=state_dir,
        log_dir=log_dir,
        log_level=raw["log_level"],
        log_max_bytes=raw["log_max_bytes"],
        log_backups=raw["log_backups"],
        heartbeat_interval=raw["heartbeat_interval"],
        sample_interval=raw["sample_interval"],
        python_path=tuple(python_path),
        control_endpoint=control,
        link_endpoint=link,
        defaults=defaults,
        metrics_bind=raw["metrics"]["bind"] if raw["metrics"]["enabled"] else "",
    )
