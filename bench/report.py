"""Write a benchmark's table into docs/BENCHMARKS.md between markers, with the command and the machine."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def machine() -> str:
    load = os.getloadavg()[0]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, load {load:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def replace_section(path: Path, key: str, table: str, cmd: str) -> None:
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\nCommand: `{cmd}` ({machine()})\n\n{table}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + f"\n\n{block}\n"
    path.write_text(text)
