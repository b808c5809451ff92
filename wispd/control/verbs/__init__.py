"""One module per wispctl verb, after circus's ``commands/``.

Each module defines ``NAME``, ``HELP``, ``MUTATING``, ``add_arguments(parser)`` and ``request(ns)`` for the
client, ``handle(sup, args, respond)`` for the daemon, and ``render(reply, ns) -> exit code`` for the
terminal. Finding what ``wispctl X`` does means opening ``verbs/X.py``.

A module is named after its verb and loaded when it is used (``load``): a wispctl command imports its own
verb, not all of them (``VERBS``, every verb, is what the daemon and ``wispctl --help`` use).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

# In the order ``wispctl --help`` lists them.
NAMES = ("status", "start", "stop", "restart", "reload", "shutdown", "logs", "halt", "resume", "positions",
         "orders", "init", "new", "health", "top", "keygen", "close", "trades", "pnl", "check", "stack",
         "backtest", "data")

# Exit codes, as supervisorctl's status (LSB): 0 fine, 1 error, 3 not running, 4 no such name.
EXIT_OK, EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 3, 4


def load(name: str) -> ModuleType:
    """The module of verb ``name`` (one of ``NAMES``)."""
    if name not in NAMES:
        raise KeyError(name)
    return import_module(f"wispd.control.verbs.{name}")


def __getattr__(name: str) -> Any:
    if name == "VERBS":
        verbs: dict[str, ModuleType] = {n: load(n) for n in NAMES}
        globals()["VERBS"] = verbs
        return verbs
    raise AttributeError(f"module 'wispd.control.verbs' has no attribute {name!r}")
