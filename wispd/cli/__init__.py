"""The command lines: ``wispd`` (``daemon.py``) and ``wispctl`` (``ctl.py``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_SIGPIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def quiet_on_closed_pipe(main: Callable[[list[str] | None], int], argv: list[str] | None) -> int:
    """Run a command whose output may go to ``head`` or ``less``: when the reader goes away, stop quietly
    (no BrokenPipeError traceback) with the usual SIGPIPE status, for every verb at once."""
    try:
        code = main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the interpreter's final flush must not fail again
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SIGPIPE


def load_config_or_say(path: str | None, prefix: str = "") -> Any:
    """The config, or None after printing every issue (file, key, value, expectation) to stderr: the one way a
    local command (``wispd check``, ``wispctl backtest``, ``wispctl data``) reports a bad config."""
    from wispd.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"{prefix}config error: {issue}", file=sys.stderr)
        return None
