"""Kill switches in the executor: drawdown from peak equity and daily loss, per strategy and per account.

Equity here is PnL (realised + unrealised - fees, in the quote asset) since the strategy began; the peak
is the highest equity seen, the day's start is the equity at the first check of the UTC day. When a limit
is passed the strategy (or the whole account) is halted, and flattened with reduce-only market orders
when ``flatten = true``. A tripped switch is journaled: it holds across restarts until an operator
resumes (``wispctl resume [NAME]``), which also restarts its peak from the equity at that moment.
Unknown equity (a position without a mark) is not judged: a missing price never trips, nor hides, a loss
that is already realised.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from wispd import clock

if TYPE_CHECKING:
    from wispd.execution.core import ExecutionCore

ACCOUNT = "*"


def _limit(raw: Any) -> Decimal | None:
    return Decimal(raw) if isinstance(raw, str) and raw else None


class KillSwitch:
    def __init__(self, core: ExecutionCore, cfg: dict[str, Any], log: Any) -> None:
        self.core, self.log = core, log
        self.limits = {"account": (_limit(cfg.get("account_max_drawdown")), _limit(cfg.get("account_daily_loss"))),
                       "strategy": (_limit(cfg.get("strategy_max_drawdown")), _limit(cfg.get("strategy_daily_loss")))}
        self.flatten = bool(cfg.get("flatten"))
        self.state: dict[str, Any] = {"peaks": {}, "day": "", "day_start": {}, "tripped": {}}
        raw = core.journal.meta("killswitch")
        if raw:
            self.state.update(orjson.loads(raw))
        for scope, reason in self.state["tripped"].items():  # halts kept across restarts
            core.halt(None if scope == ACCOUNT else scope, f"kill switch: {reason}")

    @property
    def enabled(self) -> bool:
        return any(v is not None for pair in self.limits.values() for v in pair)

    def _equity(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        total = Decimal(0)
        known = True
        for strategy in sorted(self.core.strategies):
            pnl = self.core.ledger.strategy_pnl(strategy, self.core.marks)["total"]
            if pnl is None:
                known = False
                continue
            out[strategy] = pnl
            total += pnl
        if known:
            out[ACCOUNT] = total
        return out

    def check(self) -> None:
        if not self.enabled:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime(clock.now()))
        if self.state["day"] != day:
            self.state["day"], self.state["day_start"] = day, {}
        changed = False
        for scope, equity in self._equity().items():
            peaks, starts = self.state["peaks"], self.state["day_start"]
            if scope not in peaks or equity > Decimal(peaks[scope]):
                peaks[scope] = str(equity)
                changed = True
            if scope not in starts:
                starts[scope] = str(equity)
                changed = True
            if scope in self.state["tripped"]:
                continue
            max_dd, daily = self.limits["account" if scope == ACCOUNT else "strategy"]
            drawdown = Decimal(peaks[scope]) - equity
            loss = Decimal(starts[scope]) - equity
            reason = None
            if max_dd is not None and drawdown > max_dd:
                reason = f"drawdown {drawdown:f} from peak above {max_dd}"
            elif daily is not None and loss > daily:
                reason = f"daily loss {loss:f} above {daily}"
            if reason:
                self.trip(scope, reason)
                changed = True
        if changed:
            self.core.journal.meta("killswitch", orjson.dumps(self.state).decode())

    def trip(self, scope: str, reason: str) -> None:
        self.state["tripped"][scope] = reason
        strategy = None if scope == ACCOUNT else scope
        self.log.error("kill_switch", scope=scope, reason=reason, flatten=self.flatten)
        self.core.halt(strategy, f"kill switch: {reason}")
        if self.flatten:
            self.core.cancel_all_of(strategy, f"kill switch: {reason}")
            self.core.flatten(strategy, f"kill switch: {reason}")

    def reset(self, strategy: str | None) -> None:
        """An operator resumed: the switch is clear and its peak restarts from now."""
        scopes = [ACCOUNT, *self.core.strategies] if strategy is None else [strategy]
        equity = self._equity()
        for scope in scopes:
            self.state["tripped"].pop(scope, None)
            if scope in equity:
                self.state["peaks"][scope] = str(equity[scope])
                self.state["day_start"][scope] = str(equity[scope])
            if scope != ACCOUNT:
                self.core.resume(scope)
        self.core.journal.meta("killswitch", orjson.dumps(self.state).decode())

    def tripped(self) -> dict[str, str]:
        return dict(self.state["tripped"])

    def series(self) -> list[tuple[str, dict[str, str], float]]:
        return [("wispd_kill_switch_tripped", {"account": self.core.account, "scope": scope}, 1.0)
                for scope in self.state["tripped"]]
