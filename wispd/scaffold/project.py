"""Write a new project, or add a strategy to one; never overwrite a file that exists."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

from wispd.scaffold import templates

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class ScaffoldError(Exception):
    pass


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) or "Starter"


def _write(path: Path, text: str) -> None:
    if path.exists():
        raise ScaffoldError(f"{path} already exists; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


PORTS = range(9464, 9964)  # 9464 is the usual Prometheus exporter port of wispd


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def metrics_port(directory: Path) -> int:
    """A metrics port for a new project: the search starts at a place derived from the project's path (so
    projects created while others were stopped still differ) and takes the first port free right now."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).digest()
    start = int.from_bytes(digest[:4], "big") % len(PORTS)
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        if _free(port):
            return port
    return 0  # all taken: any free port, written to run_dir/metrics.port and shown by `wispctl status`


def init_project(directory: Path, starter: str = "starter") -> list[Path]:
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} is not empty")
    config = directory / "config" / "wispd.toml"
    written = [config]
    _write(config, templates.CONFIG.format(metrics_port=metrics_port(directory)))
    written += add_strategy(config, starter)
    _write(directory / "README.md", templates.README.format(project=directory.name))
    written.append(directory / "README.md")
    return list(dict.fromkeys(written))


def add_strategy(config: Path, name: str) -> list[Path]:
    """Create strategies/<name>.py next to the config's parent and append its [strategies.<name>] block."""
    if not NAME.match(name):
        raise ScaffoldError(f"strategy names are lowercase letters, digits and _ (got {name!r})")
    if not config.is_file():
        raise ScaffoldError(f"no config file at {config}")
    text = config.read_text()
    if re.search(rf"^\[strategies\.{re.escape(name)}[\].]", text, re.M):
        raise ScaffoldError(f"{config} already has a [strategies.{name}] block")
    target = config.parent.parent / "strategies" / f"{name}.py"
    _write(target, templates.STRATEGY.format(title=name.replace("_", " ").capitalize(), cls=class_name(name),
                                             name=name.replace("_", "-")))
    with open(config, "a") as fh:
        fh.write(templates.STRATEGY_BLOCK.format(name=name))
    return [target, config]
