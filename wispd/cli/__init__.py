"""The command lines: ``wispd`` (``daemon.py``) and ``wispctl`` (``ctl.py``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

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
