"""Where a config says things are, read from the file alone: what wispctl needs to reach a daemon (its
control socket) or to look at its files when it is down. Kept apart from the full loader so a wispctl
command imports a TOML reader and a few path rules, not every section's schema and builder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from wispd.config.issues import ConfigError, ConfigIssue

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 (the brief keeps tomli for it)
    import tomli as tomllib


def _default_dir(env: str, xdg: str, xdg_fallback: str, leaf: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env].split(":")[0])
    base = os.environ.get(xdg)
    if base:
        return Path(base) / "wispd"
    if xdg == "XDG_RUNTIME_DIR":
        return Path(f"/tmp/wispd-{os.getuid()}")
    return Path.home() / xdg_fallback / "wispd" / leaf if leaf else Path.home() / xdg_fallback / "wispd"


def resolve(base: Path, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def directories(raw: dict[str, Any], config_path: Path) -> tuple[Path, Path, Path]:
    """run_dir, state_dir, log_dir as the daemon will use them (no check that they are usable)."""
    base = config_path.parent
    run_dir = resolve(base, raw.get("run_dir")) or _default_dir("RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR", "", "")
    state_dir = resolve(base, raw.get("state_dir")) or _default_dir(
        "STATE_DIRECTORY", "XDG_STATE_HOME", ".local/state", "")
    log_dir = resolve(base, raw.get("log_dir")) or (
        Path(os.environ["LOGS_DIRECTORY"].split(":")[0]) if os.environ.get("LOGS_DIRECTORY") else state_dir / "log")
    return run_dir, state_dir, log_dir


def control_endpoint(raw: dict[str, Any], config_path: Path) -> str:
    """Where the daemon of this config answers wispctl: all a client needs to know of the config."""
    run_dir = directories(raw, config_path)[0]
    value = raw.get("control_endpoint")
    return value if isinstance(value, str) and value else f"ipc://{run_dir}/control.sock"


def ipc_path(value: str) -> str | None:
    """What is wrong with an ``ipc://`` endpoint's path (None: nothing): it must be absolute and fit a
    unix socket address."""
    path = value[len("ipc://"):]
    if not path.startswith("/"):
        return "an ipc:// endpoint with an absolute path (ipc:///run/wispd/x.sock) or tcp://host:port"
    if len(path.encode()) > 107:
        return "an ipc:// path shorter than 108 bytes (the kernel's limit for unix socket paths)"
    return None


def ipc_endpoint(value: str) -> str | None:
    """The control endpoint's rule: ipc:// only (file modes protect it; tcp would not be)."""
    if not value.startswith("ipc://"):
        return "an ipc:// endpoint (the control socket is protected by file modes; tcp is not allowed)"
    return ipc_path(value)


def default_config_path() -> Path:
    """--config wins; then $WISPD_CONFIG; then ./config/wispd.toml; then /etc/wispd/wispd.toml."""
    if os.environ.get("WISPD_CONFIG"):
        return Path(os.environ["WISPD_CONFIG"])
    local = Path("config/wispd.toml")
    if local.exists():
        return local
    return Path("/etc/wispd/wispd.toml")


def read_toml(path: Path, only_daemon: bool = False) -> dict[str, Any]:
    """The parsed file; with ``only_daemon``, a document holding at least its root keys and its ``[daemon]``
    table (see ``daemon_part``), which is all wispctl needs to find a daemon."""
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(file, "(file)", file, "an existing config file (not found)")]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(file, "(file)", file, f"a readable config file ({exc.strerror})")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(file, "(file)", file, "UTF-8 text")]) from None
    if only_daemon:
        part = daemon_part(text)
        if part is not None:
            try:
                return tomllib.loads(part)
            except tomllib.TOMLDecodeError:
                pass  # the whole file's parse says where the problem is
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(file, "(syntax)", str(exc), "valid TOML")]) from None


# A line that can only be a table header outside a multi-line value: [name] or [[name]], then a comment.
_HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*([^\[\]#,=]*?)[ \t]*\]\]?[ \t]*(?:#.*)?$", re.M)


def daemon_part(text: str) -> str | None:
    """The root keys and the ``[daemon]`` table (with its sub-tables) of a config's text, cut out without parsing the rest (the
    strategy sections are most of a big config, and parsing them was the largest part of a wispctl command
    with 100 strategies), or None when the cut cannot be trusted and the whole file must be parsed.

    The cut is at table headers. A header-like line can also sit inside a multi-line string (then None: any
    triple quote means a whole parse) or inside a multi-line array; a cut there leaves the part that holds it
    unterminated, so its parse fails and the caller parses the whole file. Two ``daemon`` headers, or an array
    of them: None (the whole parse refuses such a file)."""
    if '"""' in text or "'''" in text:
        return None
    headers = list(_HEADER.finditer(text))
    names = [re.sub(r"[\"'\s]", "", m.group(2)) for m in headers]
    tops = [i for i, name in enumerate(names) if name == "daemon"]
    if len(tops) > 1 or any(headers[i].group(1) == "[[" for i in tops):
        return None
    part = text[:headers[0].start()] if headers else text
    for i, name in enumerate(names):  # [daemon] and its sub-tables ([daemon.metrics])
        if name == "daemon" or name.startswith("daemon."):
            part += "\n" + text[headers[i].start():headers[i + 1].start() if i + 1 < len(headers) else len(text)]
    return part


class Paths(NamedTuple):
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
    run_dir, state_dir, log_dir = directories(section, config_path)

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
    raw = read_toml(config_path, only_daemon=True)
    section = raw.get("daemon") if isinstance(raw.get("daemon"), dict) else {}
    endpoint = control_endpoint(section, config_path)
    problem = ipc_endpoint(endpoint)
    if problem:
        raise ConfigError([ConfigIssue(str(config_path), "daemon.control_endpoint", endpoint, problem)])
    return endpoint
