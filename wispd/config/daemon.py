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
from wispd.config.paths import control_endpoint, directories
from wispd.config.paths import resolve as _resolve
from wispd.config.schema import (
    ConfigIssue,
    Field,
    Table,
    at_least,
    between,
    host_port,
    ipc_endpoint,
    non_negative,
    one_of,
)
from wispd.config.secrets import ENV_NAME, check_env, check_file


def env_name(value: str) -> str | None:
    return None if ENV_NAME.match(value) else "an environment variable name (A-Z, 0-9, _)"

SPEC = Table(
    {
        "run_dir": Field(str, "a directory path (holds the ipc sockets and the lock)"),
        "state_dir": Field(str, "a directory path (desired state, journals)"),
        "log_dir": Field(str, "a directory path (per-child log files)"),
        "log_level": Field(str, "a log level", default="info",
                           check=one_of("debug", "info", "warning", "error")),
        "log_max_bytes": Field(int, "bytes, at least 4096", default=10 * 1024 * 1024, check=at_least(4096)),
        "log_backups": Field(int, "a count of 0 or more", default=5, check=non_negative),
        "heartbeat_interval": Field(float, "seconds from 0.05 to 60", default=1.0, check=between(0.05, 60)),
        "heartbeat_timeout": Field(float, "seconds from 0.2 to 3600 (more than heartbeat_interval)", default=10.0,
                                   check=between(0.2, 3600)),
        "drain_timeout": Field(float, "seconds from 0 to 3600", default=10.0, check=between(0, 3600)),
        "stop_timeout": Field(float, "seconds from 0.1 to 3600", default=5.0, check=between(0.1, 3600)),
        "sample_interval": Field(float, "seconds from 0.05 to 60", default=1.0, check=between(0.05, 60)),
        "python_path": Field(list, "a list of directory paths", default=[], item_type=str),
        "control_endpoint": Field(str, "an ipc:// endpoint", check=ipc_endpoint),
        "curve_secret_file": Field(str, "a 0600 file with the daemon's z85 CURVE secret key (`wispctl keygen` "
                                   "writes one); required when any endpoint is tcp://"),
        "curve_authorized_keys": Field(str, "a file of '<z85 public key> <name>' lines: outside programs allowed "
                                       "to connect to tcp:// endpoints"),
        "metrics": Table({
            "enabled": Field(bool, "true or false", default=True),
            "bind": Field(str, "host:port for /metrics and /health (port 0 = any free port)",
                          default="127.0.0.1:9464", check=host_port),
            "bearer_token_env": Field(str, "the NAME of an environment variable holding a bearer token that "
                                      "/metrics and /health then require", check=env_name),
            "basic_auth_env": Field(str, "the NAME of an environment variable holding user:password for HTTP "
                                    "basic auth on /metrics and /health", check=env_name),
        }),
    },
    doc="the daemon itself",
)


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


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def build(raw: dict[str, Any], config_path: Path, issues: list[ConfigIssue],
          warnings: list[str] | None = None) -> DaemonConfig:
    file = str(config_path)
    base = config_path.parent
    run_dir, state_dir, log_dir = directories(raw, config_path)
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
    control = control_endpoint(raw, config_path)
    link = f"ipc://{run_dir}/link.sock"
    for key, endpoint in (("control_endpoint", control), ("run_dir", link)):
        if len(endpoint.encode()) - len("ipc://") > 107:
            issues.append(ConfigIssue(file, f"daemon.{key}", endpoint,
                                      "a path shorter than 108 bytes (unix socket limit); use a shorter run_dir"))
    if raw["heartbeat_timeout"] <= 2 * raw["heartbeat_interval"]:
        issues.append(ConfigIssue(file, "daemon.heartbeat_timeout", raw["heartbeat_timeout"],
                                  f"more than twice daemon.heartbeat_interval ({raw['heartbeat_interval']:g} s): "
                                  "one late heartbeat must not look like a hang"))
    metrics = raw["metrics"]
    for key in ("bearer_token_env", "basic_auth_env"):
        if metrics[key]:
            issues += check_env(file, f"daemon.metrics.{key}", metrics[key])
    if metrics["basic_auth_env"] and ":" not in os.environ.get(metrics["basic_auth_env"], ":"):
        issues.append(ConfigIssue(file, "daemon.metrics.basic_auth_env", metrics["basic_auth_env"],
                                  "a variable holding user:password"))
    host = metrics["bind"].rpartition(":")[0]
    if metrics["enabled"] and warnings is not None and not is_loopback(host) and \
            not (metrics["bearer_token_env"] or metrics["basic_auth_env"]):
        warnings.append(f"{file}: daemon.metrics.bind = {metrics['bind']!r} is reachable beyond this host and "
                        "has no auth: set daemon.metrics.bearer_token_env or basic_auth_env")
    curve_secret = _resolve(base, raw["curve_secret_file"])
    if curve_secret is not None:
        issues += check_file(file, "daemon.curve_secret_file", str(curve_secret), base)
    authorized = _resolve(base, raw["curve_authorized_keys"])
    if authorized is not None and not (authorized.is_file() and os.access(authorized, os.R_OK)):
        issues.append(ConfigIssue(file, "daemon.curve_authorized_keys", raw["curve_authorized_keys"],
                                  "a readable file of '<z85 public key> <name>' lines"))
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
        metrics_bind=metrics["bind"] if metrics["enabled"] else "",
        metrics_auth_env=(metrics["bearer_token_env"] or "", metrics["basic_auth_env"] or ""),
        curve_secret_file=str(curve_secret) if curve_secret else "",
        curve_authorized_keys=str(authorized) if authorized else "",
    )
