"""One module per wispctl verb, after circus's ``commands/``.

Each module defines ``NAME``, ``HELP``, ``MUTATING``, ``add_arguments(parser)`` and ``request(ns)`` for the
client, ``handle(sup, args, respond)`` for the daemon, and ``render(reply, ns) -> exit code`` for the
terminal. Finding what ``wispctl X`` does means opening ``verbs/X.py``.
"""

from __future__ import annotations

from types import ModuleType

from wispd.control.verbs import (
    backtest,
    check,
    close,
    data,
    halt,
    health,
    init,
    keygen,
    logs,
    new,
    orders,
    pnl,
    positions,
    reload,
    restart,
    resume,
    shutdown,
    stack,
    start,
    status,
    stop,
    top,
    trades,
)

VERBS: dict[str, ModuleType] = {m.NAME: m for m in (status, start, stop, restart, reload, shutdown, logs, halt,
                                                    resume, positions, orders, init, new, health, top, keygen, close,
                                                    trades, pnl, check, stack, backtest, data)}

# Exit codes, as supervisorctl's status (LSB): 0 fine, 1 error, 3 not running, 4 no such name.
EXIT_OK, EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 3, 4
