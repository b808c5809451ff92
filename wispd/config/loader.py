"""Load and validate ``wispd.toml`` up front, reporting every problem at once.

Nothing starts until the whole file is valid: a config error exits 78 (EX_CONFIG), which systemd's
``RestartPreventExitStatus=78`` turns into "stay down and tell the operator" rather than a restart loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wispd.config import daemon as daemon_section
from wispd.config import exchanges as exchanges_section
from wispd.config import executors as executors_section
from wispd.config import processes as processes_section
from wispd.config import strategies as strategies_section
from wispd.config.model import ChildSpec, Config
from wispd.config.schema import ConfigError, ConfigIssue, Table, validate

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
    daemon = daemon_section.build(data["daemon"], config_path, issues)
    children: list[ChildSpec] = []
    for key, _, builder in _PLANES:
        children.extend(builder(data[key], daemon, issues, data))
    seen: dict[str, str] = {}
    for spec in children:
        if spec.name in seen:
            issues.append(ConfigIssue(file, f"{spec.kind} {spec.name}", spec.name,
                                      f"a unique child name (already used by a {seen[spec.name]})"))
        seen[spec.name] = spec.kind
    if issues:
        raise ConfigError(issues)
    return Config(daemon=daemon, children=tuple(children), sections=data)
