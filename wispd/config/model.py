"""Typed configuration objects shared by the loader, the supervisor and the planes.

``ChildSpec`` is the supervisor's whole view of one child: which entry point to run, the arguments it
gets, its restart policy and its limits. Its ``fingerprint`` is what ``wispctl reload`` compares to decide
whether a child changed and must be restarted.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from wispd.config.schema import Field, Table, between, one_of


@dataclass(frozen=True)
class RestartPolicy:
    """OTP restart type plus exponential backoff with jitter and a crash-loop window."""

    policy: str = "permanent"  # permanent: always restart; transient: only after a failure; temporary: never
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_factor: float = 2.0
    jitter: float = 0.2  # +/- fraction applied to each delay
    stable_after: float = 30.0  # seconds RUNNING after which the backoff resets
    max_restarts: int = 5  # this many restarts within `window` seconds -> FATAL
    window: float = 60.0


@dataclass(frozen=True)
class Limits:
    memory_mb: float = 0.0  # 0 = no limit; RSS above it for `memory_grace` seconds -> restart (reason memory)
    memory_grace: float = 3.0
    start_timeout: float = 30.0
    heartbeat_timeout: float = 10.0
    drain_timeout: float = 10.0
    stop_timeout: float = 5.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    kind: str
    entry: str
    args: dict[str, Any]
    restart: RestartPolicy
    limits: Limits
    autostart: bool = True
    start_rank: int = 1
    stop_rank: int = 0
    reloadable: tuple[str, ...] = ()  # args a running child learns over its link (a change is not a restart)

    def fingerprint(self) -> str:
        doc = asdict(self)
        doc["args"] = {k: v for k, v in self.args.items() if k not in self.reloadable}
        blob = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class DaemonConfig:
    config_path: Path
    run_dir: Path
    state_dir: Path
    log_dir: Path
    log_level: str = "info"
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    heartbeat_interval: float = 1.0
    sample_interval: float = 1.0
    python_path: tuple[str, ...] = ()
    control_endpoint: str = ""
    link_endpoint: str = ""
    defaults: Limits = field(default_factory=Limits)
    metrics_bind: str = ""  # "" = no metrics endpoint
    metrics_auth_env: tuple[str, str] = ("", "")  # names of the bearer token and basic user:password variables
    curve_secret_file: str = ""  # the daemon's CURVE secret key (tcp:// endpoints)
    curve_authorized_keys: str = ""  # outside CURVE public keys allowed in


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig
    children: tuple[ChildSpec, ...]
    sections: dict[str, Any]  # the validated raw sections, for planes that need more than a ChildSpec
    warnings: tuple[str, ...] = ()  # valid but risky settings, logged at start and printed by `wispd check`

    def child(self, name: str) -> ChildSpec | None:
        return next((c for c in self.children if c.name == name), None)


# --------------------------------------------------------------------------- shared table specs

RESTART_SPEC = Table(
    {
        "policy": Field(str, "permanent, transient or temporary",
                        check=one_of("permanent", "transient", "temporary")),
        "backoff_initial": Field(float, "seconds from 0.01 to 3600", default=RestartPolicy.backoff_initial,
                                 check=between(0.01, 3600)),
        "backoff_max": Field(float, "seconds from 0.01 to 86400", default=RestartPolicy.backoff_max,
                             check=between(0.01, 86400)),
        "backoff_factor": Field(float, "a factor from 1 to 100", default=RestartPolicy.backoff_factor,
                                check=between(1, 100, "a factor")),
        "jitter": Field(float, "a fraction between 0 and 1", default=RestartPolicy.jitter,
                        check=lambda v: None if 0 <= v < 1 else "a fraction between 0 and 1"),
        "stable_after": Field(float, "seconds from 0.1 to 86400", default=RestartPolicy.stable_after,
                              check=between(0.1, 86400)),
        "max_restarts": Field(int, "an integer from 1 to 1000", default=RestartPolicy.max_restarts,
                              check=between(1, 1000, "a count")),
        "window": Field(float, "seconds from 0.1 to 86400", default=RestartPolicy.window, check=between(0.1, 86400)),
    },
    doc="restart policy of one child",
)

LIMITS_SPEC = Table(
    {
        "memory_mb": Field(float, "megabytes from 0 (no limit) to 1048576", default=0.0,
                           check=between(0, 1048576, "megabytes")),
        "memory_grace": Field(float, "seconds from 0 to 3600", default=Limits.memory_grace, check=between(0, 3600)),
        "start_timeout": Field(float, "seconds from 0.1 to 3600", check=between(0.1, 3600)),
        "heartbeat_timeout": Field(float, "seconds from 0.2 to 3600", check=between(0.2, 3600)),
        "drain_timeout": Field(float, "seconds from 0 to 3600", check=between(0, 3600)),
        "stop_timeout": Field(float, "seconds from 0.1 to 3600", check=between(0.1, 3600)),
    },
    doc="resource and time limits of one child",
)


def build_restart(raw: dict[str, Any], default_policy: str) -> RestartPolicy:
    values = dict(raw)
    values["policy"] = values.get("policy") or default_policy
    return RestartPolicy(**values)


def build_limits(raw: dict[str, Any], defaults: Limits, start_timeout: float) -> Limits:
    def pick(key: str, fallback: float) -> float:
        value = raw.get(key)
        return fallback if value is None else value

    return Limits(
        memory_mb=raw.get("memory_mb") or 0.0,
        memory_grace=pick("memory_grace", defaults.memory_grace),
        start_timeout=pick("start_timeout", start_timeout),
        heartbeat_timeout=pick("heartbeat_timeout", defaults.heartbeat_timeout),
        drain_timeout=pick("drain_timeout", defaults.drain_timeout),
        stop_timeout=pick("stop_timeout", defaults.stop_timeout),
    )


def child_spec(name: str, kind: Any, args: dict[str, Any], item: dict[str, Any], daemon: DaemonConfig,
               entry: str | None = None, reloadable: tuple[str, ...] = ()) -> ChildSpec:
    """The one way a config section's item becomes a ChildSpec (its ``restart`` and ``limits`` tables
    resolved against the kind's and the daemon's defaults)."""
    return ChildSpec(
        name=name, kind=kind.name, entry=entry or kind.entry or "", args=args,
        restart=build_restart(item["restart"], kind.restart),
        limits=build_limits(item["limits"], daemon.defaults, kind.start_timeout),
        autostart=item.get("autostart", True), start_rank=kind.start_rank, stop_rank=kind.stop_rank,
        reloadable=reloadable,
    )
