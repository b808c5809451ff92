"""Where a child's thread stacks go when wispd asks for them, and how they are read back.

Why: a strategy that stops heartbeating is killed and restarted; without its stacks nobody can tell at
3 am where its loop was stuck. Every child registers ``faulthandler`` on ``STACK_SIGNAL`` (and for fatal
errors) writing to its own file, ``<run_dir>/stacks/<name>.txt``. faulthandler writes from the C signal
handler, so the dump comes even while the main thread is stuck in a C call or a tight loop that never
returns to Python's signal machinery. The file is opened ``O_APPEND`` and truncated at each start; a
reader remembers the size before it sends the signal and reads what was added after.
"""

from __future__ import annotations

import faulthandler
import os
import signal
from pathlib import Path

STACK_SIGNAL = signal.SIGUSR2
MAX_DUMP = 256 * 1024  # a dump larger than this is cut (thousands of threads): the first part says enough

_held: dict[str, int] = {}  # the open fd; faulthandler needs it for as long as the process lives


def stack_path(run_dir: Path, name: str) -> Path:
    return run_dir / "stacks" / f"{name}.txt"


def install(run_dir: Path, name: str) -> None:
    """In the child: dump every thread's stack to the stack file on ``STACK_SIGNAL`` and on a fatal error."""
    path = stack_path(run_dir, name)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
    _held["fd"] = fd
    faulthandler.enable(file=fd, all_threads=True)
    faulthandler.register(STACK_SIGNAL, file=fd, all_threads=True, chain=False)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_after(path: Path, offset: int) -> str:
    """What was appended to the stack file after ``offset`` ("" when nothing came)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(MAX_DUMP)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")
