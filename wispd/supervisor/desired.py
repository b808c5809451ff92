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
        self.halted_strategies: set[str] = set()  # wispctl halt NAME, kept the same way
        self.unsaved: str | None = None  # why the last change could not be written (it holds in memory only)

    def load(self) -> set[str]:
        try:
            doc = orjson.loads(self.path.read_bytes())
            self.stopped = {str(n) for n in doc.get("stopped", [])}
            self.halted = bool(doc.get("halted", False))
            self.halted_strategies = {str(n) for n in doc.get("halted_strategies", [])}
        except FileNotFoundError:
            self.stopped = set()
        except (orjson.JSONDecodeError, AttributeError, OSError):
            # A corrupt file must not stop the daemon; start from "everything wanted" and say so.
            self.stopped = set()
            raise
        return self.stopped

    def set_wanted(self, name: str, wanted: bool) -> str | None:
        """Record an operator's start/stop; returns why it could not be saved (None when it was)."""
        before = set(self.stopped)
        (self.stopped.discard if wanted else self.stopped.add)(name)
        return self.save() if self.stopped != before or self.unsaved else None

    def set_halted(self, halted: bool, strategy: str | None = None) -> str | None:
        """Record a halt or resume (in memory at once), of the account or of one strategy; returns why it
        could not be saved, if it could not."""
        if strategy is None:
            changed = halted != self.halted
            self.halted = halted
        else:
            changed = halted != (strategy in self.halted_strategies)
            (self.halted_strategies.add if halted else self.halted_strategies.discard)(strategy)
        return self.save() if changed or self.unsaved else None

    def save(self) -> str | None:
        """Write atomically (temp file, fsync, rename, mode 0600); the error text if that failed."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps({"stopped": sorted(self.stopped), "halted": self.halted,
                                       "halted_strategies": sorted(self.halted_strategies)}))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            self.unsaved = f"{self.path}: {exc.strerror or exc}"
            return self.unsaved
        self.unsaved = None
        return None
