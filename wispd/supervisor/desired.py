"""Desired state that outlives wispd: which children an operator stopped.

Kept in ``<state_dir>/desired.json`` and written atomically (temp file, fsync, rename), so a strategy an
operator stopped stays stopped across a restart of wispd, a reboot or a reload.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson


class DesiredState:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "desired.json"
        self.stopped: set[str] = set()
        self.halted = False  # global trading halt (wispctl halt), kept across restarts until resume

    def load(self) -> set[str]:
        try:
            doc = orjson.loads(self.path.read_bytes())
            self.stopped = {str(n) for n in doc.get("stopped", [])}
            self.halted = bool(doc.get("halted", False))
        except FileNotFoundError:
            self.stopped = set()
        except (orjson.JSONDecodeError, AttributeError, OSError):
            # A corrupt file must not stop the daemon; start from "everything wanted" and say so.
            self.stopped = set()
            raise
        return self.stopped

    def set_wanted(self, name: str, wanted: bool) -> None:
        before = set(self.stopped)
        (self.stopped.discard if wanted else self.stopped.add)(name)
        if self.stopped != before:
            self.save()

    def set_halted(self, halted: bool) -> None:
        if halted != self.halted:
            self.halted = halted
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps({"stopped": sorted(self.stopped), "halted": self.halted}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
