"""Load and validate ``wispd.toml`` up front, reporting every problem at once.

Nothing starts until the whole file is valid: a config error exits 78 (EX_CONFIG), which systemd's
``RestartPreventExitStatus=78`` turns into "stay down and tell the operator" rather than a restart loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wispd.config import daemon as daemon_section
from wispd.config import exchanges as exchanges_section
from wispd.config import executors as executors_section
from wispd.config import processes as processes_section
from wispd.config import recorders as recorders_section
from wispd.config import strategies as strategies_section
from wispd.config.model import ChildSpec, Config, DaemonConfig
from wispd.config.schema import ConfigError, ConfigIssue, Table, ipc_endpoint, validate

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 (the brief keeps tomli for it)
    import tomli as tomllib

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


def default_config_path() -> Path:
    """--config wins; then $WISPD_CONFIG; then ./config/wispd.toml; then /etc/wispd/wispd.toml."""
    if os.environ.get("WISPD_CONFIG"):
        return Path(os.environ["WISPD_CONFIG"])
    local = Path("config/wispd.toml")
    if local.exists():
        return local
    return Path("/etc/wispd/wispd.toml")


def read_toml(path: Path) -> dict[str, Any]:
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(file, "(file)", file, "an existing config file (not found)")]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, "(file)", file, f"a readable config file ({exc.strerror})")]) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(file, "(file)", file, "UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(file, "(syntax)", str(exc), "valid TOML")]) from None


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


@dataclass(frozen=True)
class Paths:
    """What wispctl needs of a config when the daemon is not running: where things are, the child names."""

    config_path: Path
    run_dir: Path
    state_dir: Path
    log_dir: Path
    children: tuple[str, ...]
    accounts: tuple[str, ...]


def load_paths(path: str | Path | None = None) -> Paths:
    """Directories and child names from the file alone (no validation of the rest, no secrets read)."""
    config_path = Path(path) if path else default_config_path()
    config_path = config_path.expanduser().absolute()
    raw = read_toml(config_path)
    section = raw.get("daemon") if isinstance(raw.get("daemon"), dict) else {}
    run_dir, state_dir, log_dir = daemon_section.directories(section, config_path)

    def names(key: str) -> list[str]:
        value = raw.get(key)
        return list(value) if isinstance(value, dict) else []

    children = [f"ingestor.{n}" for n in names("exchanges")] + [f"executor.{n}" for n in names("executors")]
    children += names("strategies") + names("recorders") + names("processes")
    return Paths(config_path, run_dir, state_dir, log_dir, tuple(children), tuple(names("executors")))


def load_control_endpoint(path: str | Path | None = None) -> str:
    """The control endpoint of a config, from its ``[daemon]`` section alone: wispctl never needs the rest
    (strategies, secrets, a writable state directory) to reach a running daemon."""
    config_path = Path(path) if path else default_config_path()
    config_path = config_path.expanduser().absolute()
    raw = read_toml(config_path)
    section = raw.get("daemon") if isinstance(raw.get("daemon"), dict) else {}
    endpoint = daemon_section.control_endpoint(section, config_path)
    problem = ipc_endpoint(endpoint)
    if problem:
        raise ConfigError([ConfigIssue(str(config_path), "daemon.control_endpoint", endpoint, problem)])
    return endpoint
