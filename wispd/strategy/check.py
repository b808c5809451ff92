"""``wispd check`` for strategies: import each strategy in a throwaway process and validate it whole.

The daemon's own config check cannot see inside a strategy file (a syntax error, a class that is not a
Strategy, a parameter of the wrong type); this does, before deploy, without running any strategy code
beyond its module's import. Each strategy is imported in its own short-lived interpreter, so one file's
import side effects (or a hang, cut at ``TIMEOUT``) cannot touch the next.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import orjson

TIMEOUT = 60.0


def probe(args: dict[str, Any], name: str) -> dict[str, Any]:
    """In the throwaway process: load the class and check every parameter; never raises."""
    from wispd.strategy.api import check_params
    from wispd.strategy.child import LoadError, load_strategy_class

    try:
        cls = load_strategy_class(args, name)
    except LoadError as exc:
        return {"ok": False, "errors": [str(exc)]}
    _, problems = check_params(cls.params, args.get("params") or {})
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    return {"ok": not problems, "class": cls.__name__, "errors": problems, "file": source}


def check_strategy(args: dict[str, Any], name: str, python_path: list[str]) -> dict[str, Any]:
    """Run ``probe`` for one strategy in a new interpreter (the config's python_path on sys.path)."""
    code = ("import sys, orjson; sys.path[:0] = orjson.loads(sys.argv[1]); "
            "from wispd.strategy.check import probe; "
            "sys.stdout.write(orjson.dumps(probe(orjson.loads(sys.argv[2]), sys.argv[3])).decode())")
    try:
        done = subprocess.run([sys.executable, "-c", code, orjson.dumps(python_path).decode(),
                               orjson.dumps(args).decode(), name], capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"ok": False, "errors": [f"importing the strategy did not finish within {TIMEOUT:.0f} s"]}
    try:
        return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, orjson.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "errors": [f"the check process failed: {tail}"]}
