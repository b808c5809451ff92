"""Load and validate ``wispd.toml`` up front, reporting every problem at once.

Nothing starts until the whole file is valid: a config error exits 78 (EX_CONFIG), which systemd's
``RestartPreventExitStatus=78`` turns into "stay down and tell the operator" rather than a restart loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wispd.config import daemon as daemon_section
from wispd.config import exchanges as exchanges_section
from wispd.config import executors as executors_section
from wispd.config import processes as processes_section
from wispd.config import recorders as recorders_section
from wispd.config import strategies as strategies_section
from wispd.config.model import ChildSpec, Config, DaemonConfig
from wispd.config.paths import default_config_path, read_toml
from wispd.config.schema import ConfigError, ConfigIssue, Table, validate

EX_CONFIG = 78

# Plane sections: (key, spec, builder). A builder turns its validated section into ChildSpecs; builders
# that need other sections (strategies need exchange and executor endpoints) take the whole data too.
_PLANES: list[tuple[str, Any, Any]] = [
    ("exchanges", exchanges_section.SPEC, exchanges_section.build),
    ("executors", executors_section.SPEC, executors_section.build),
    ("strategies", strategies_section.SPEC, strategies_section.build),
    ("recorders", recorders_section.SPEC, recorders_section.build),
    ("processes", processes_section.SPEC, processes_section.build),
]


def root_spec() -> Table:
    fields: dict[str, Any] = {"daemon": daemon_section.SPEC}
    for key, spec, _ in _PLANES:
        fields[key] = spec
    return Table(fields)


def load_config(path: str | Path | None = None) -> Config:
    """Parse, validate and build the whole configuration, or raise ConfigError listing every issue."""
    config_path = Path(path) if path else default_config_path()
    config_path = config_path.expanduser().absolute()
    raw = read_toml(config_path)
    file = str(config_path)
    data, issues = validate(raw, root_spec(), file)
    warnings: list[str] = []
    daemon = daemon_section.build(data["daemon"], config_path, issues, warnings)
    children: list[ChildSpec] = []
    for key, _, builder in _PLANES:
        children.extend(builder(data[key], daemon, issues, data))
    seen: dict[str, str] = {}
    for spec in children:
        if spec.name in seen:
            issues.append(ConfigIssue(file, f"{spec.kind} {spec.name}", spec.name,
                                      f"a unique child name (already used by a {seen[spec.name]})"))
        seen[spec.name] = spec.kind
    issues += _tcp_issues(file, daemon, children, warnings)
    if issues:
        raise ConfigError(issues)
    return Config(daemon=daemon, children=tuple(children), sections=data, warnings=tuple(warnings))


ENDPOINT_ARGS = ("pub_endpoint", "snapshot_endpoint", "signals_endpoint", "reports_endpoint")


def _tcp_issues(file: str, daemon: DaemonConfig, children: list[ChildSpec], warnings: list[str]) -> list[ConfigIssue]:
    """tcp:// endpoints are encrypted and authenticated (CURVE) or refused; beyond loopback they warn."""
    out: list[ConfigIssue] = []
    for spec in children:
        for key in ENDPOINT_ARGS:
            endpoint = spec.args.get(key)
            if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
                continue
            where = f"{spec.name} {key}"
            if not daemon.curve_secret_file:
                out.append(ConfigIssue(file, where, endpoint, "an ipc:// endpoint, or set daemon.curve_secret_file: "
                                       "tcp:// endpoints are encrypted and authenticated with CURVE (generate a key "
                                       "with `wispctl keygen FILE`)"))
            host = endpoint[len("tcp://"):].rpartition(":")[0].strip("[]")
            if not daemon_section.is_loopback(host):
                warnings.append(f"{file}: {where} = {endpoint!r} listens beyond this host (CURVE-protected)")
    return out
