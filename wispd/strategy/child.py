"""Entry point of the strategy child kind: load the class, validate parameters, watch, ready, run.

Exit codes: a missing class, an import error or invalid parameters exit 78 (configuration error: FATAL,
no restart loop). An exception in ``run`` is logged with its traceback and ends the process (exit 70), so
the restart policy applies. This module never imports ccxt.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
import time
from pathlib import Path
from typing import Any

from wispd.runtime.context import ChildContext
from wispd.strategy.api import ParamError, Strategy, resolve_params
from wispd.strategy.runtime import Runtime, StrategyContext

EX_CONFIG = 78


class LoadError(Exception):
    pass


def load_strategy_class(args: dict[str, Any], name: str) -> type[Strategy]:
    try:
        if args.get("file"):
            path = Path(args["file"])
            mod_name = f"wispd_strategy_{name.replace('-', '_')}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise LoadError(f"cannot load a Python module from {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(args["module"])
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"importing the strategy failed: {type(exc).__name__}: {exc}") from exc
    if args.get("class"):
        cls = getattr(module, args["class"], None)
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise LoadError(f"{args['class']!r} in {module.__name__} is not a Strategy subclass")
        return cls
    found = [c for c in vars(module).values()
             if inspect.isclass(c) and issubclass(c, Strategy) and c is not Strategy and c.__module__ == module.__name__]
    if len(found) != 1:
        raise LoadError(f"{module.__name__} defines {len(found)} Strategy classes; name one with class = \"...\"")
    return found[0]


async def _run_async(strategy: Strategy, ctx: StrategyContext, rt: Runtime) -> Any:
    async def service() -> None:
        while True:
            rt.service()
            await asyncio.sleep(0.2)

    task = asyncio.get_running_loop().create_task(service())
    try:
        return await strategy.run(ctx)
    finally:
        task.cancel()


def main(child: ChildContext) -> int:
    args = child.args
    log = child.log
    try:
        cls = load_strategy_class(args, child.name)
        params = resolve_params(cls.params, args.get("params") or {})
    except (LoadError, ParamError) as exc:
        log.error("strategy_config_error", error=str(exc))
        child.exiting(str(exc))
        return EX_CONFIG
    strategy = cls()
    strategy.name, strategy.p = child.name, params
    rt = Runtime(child, args)
    rt.start()
    ctx = StrategyContext(rt, strategy)
    ready_sent = False
    try:
        for exchange, market, symbol in args.get("pairs") or []:
            if not rt.domains[market].watch_pair(exchange, symbol):
                log.warning("no_snapshot_yet", exchange=exchange, market=market, symbol=symbol)
        if rt.push is not None:
            # Nothing is decided before the executor's state (positions, working orders, balances) is here:
            # a restarted strategy must not buy again what it already holds. Ready early if it takes long (so
            # the start timeout does not kill a strategy whose executor is merely away), then keep waiting.
            if not rt.wait_for_state(time.monotonic() + float(args.get("state_wait", 10.0))):
                child.ready(watched=len(rt.watched), strategy=cls.__name__, state="waiting for the executor")
                ready_sent = True
                if not rt.wait_for_state():
                    return 0
        rt.wake()
        strategy.on_start(ctx)
        if child.stopping:
            return 0
        if not ready_sent:
            child.ready(watched=len(rt.watched), strategy=cls.__name__)
        rt.wake()  # run begins: a timer's schedule starts now (``woke`` on the first signal says when)
        if inspect.iscoroutinefunction(strategy.run):
            asyncio.run(_run_async(strategy, ctx, rt))
        else:
            strategy.run(ctx)
        log.info("run_returned", stop_reason=child.stop_reason)
        return 0
    finally:
        try:
            strategy.on_stop(ctx)
        except Exception:  # noqa: BLE001 - on_stop failing must not hide why run ended
            log.exception("on_stop_failed")
        rt.close()
