"""Fill history and PnL read straight from the journals (read-only), for ``wispctl trades`` and ``pnl``:
they work whether the daemon runs or not (SQLite in WAL mode lets a reader in beside the writer)."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from wispd import numbers

ZERO = Decimal(0)


def journals(state_dir: Path) -> dict[str, Path]:
    """account -> its journal file."""
    return {p.name[len("journal-"):-len(".sqlite")]: p for p in sorted(state_dir.glob("journal-*.sqlite"))}


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def _rules(flags: Any) -> dict[str, Decimal]:
    try:
        raw = orjson.loads(flags or b"{}").get("rules") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return {}
    return {k: Decimal(v) for k, v in raw.items() if k in ("tick", "step")}


def fills(state_dir: Path, since_ms: float = 0, strategy: str | None = None) -> list[dict[str, Any]]:
    """Every fill since ``since_ms`` (of one strategy), oldest first, numbers as the market shows them."""
    out = []
    for account, path in journals(state_dir).items():
        db = _open(path)
        try:
            cols = {r[1] for r in db.execute("PRAGMA table_info(fills)")}
            realized = "f.realized" if "realized" in cols else "NULL"
            sql = (f"SELECT f.ts_ms, f.client_id, f.price, f.qty, f.fee, f.liquidity, {realized} AS realized,"
                   " o.strategy, o.exchange, o.market, o.symbol, o.side, o.flags, o.signal_id"
                   " FROM fills f JOIN orders o ON o.client_id = f.client_id WHERE f.ts_ms >= ?")
            args: list[Any] = [since_ms]
            if strategy is not None:
                sql += " AND o.strategy = ?"
                args.append(strategy)
            for r in db.execute(sql + " ORDER BY f.id", args):
                rules = _rules(r["flags"])
                places = numbers.money_places(rules.get("tick"), rules.get("step"))
                out.append({"time": iso(r["ts_ms"]), "ts_ms": r["ts_ms"], "account": account,
                            "strategy": r["strategy"], "exchange": r["exchange"], "market": r["market"],
                            "symbol": r["symbol"], "side": r["side"],
                            "qty": numbers.qty(Decimal(r["qty"]), rules.get("step")),
                            "price": numbers.price(Decimal(r["price"]), rules.get("tick")),
                            "fee": numbers.money(Decimal(r["fee"]), places),
                            "realized_pnl": numbers.money(Decimal(r["realized"]), places) if r["realized"] else None,
                            "liquidity": r["liquidity"], "client_id": r["client_id"], "signal_id": r["signal_id"],
                            "_places": places})
        finally:
            db.close()
    out.sort(key=lambda f: f["ts_ms"])
    return out


def pnl(state_dir: Path, by: str = "strategy", since_ms: float = 0) -> list[dict[str, Any]]:
    """Realised PnL and fees per strategy or per UTC day (from the fills), and for ``by="strategy"`` the
    open positions' unrealised PnL at the last mark the journal kept (None when it has none)."""
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"realized": ZERO, "fees": ZERO, "fills": 0,
                                                              "places": 2})
    for f in fills(state_dir, since_ms):
        key = f["strategy"] if by == "strategy" else f["time"][:10]
        g = groups[key]
        g["realized"] += Decimal(f["realized_pnl"] or "0")
        g["fees"] += Decimal(f["fee"])
        g["fills"] += 1
        g["places"] = max(g["places"], f["_places"])
    unrealized: dict[str, Decimal | None] = {}
    if by == "strategy":
        for _, path in journals(state_dir).items():
            db = _open(path)
            try:
                marks = {(r["exchange"], r["market"], r["symbol"]): Decimal(r["price"])
                         for r in db.execute("SELECT * FROM marks")} if _has(db, "marks") else {}
                for r in db.execute("SELECT * FROM positions"):
                    qty = Decimal(r["qty"])
                    if qty == 0:
                        continue
                    mark = marks.get((r["exchange"], r["market"], r["symbol"]))
                    value = None if mark is None else (mark - Decimal(r["avg_price"])) * qty
                    have = unrealized.get(r["strategy"], ZERO)
                    unrealized[r["strategy"]] = None if value is None or have is None else have + value
            finally:
                db.close()
    rows = []
    for key in sorted(set(groups) | set(unrealized)):
        g = groups[key]
        u = unrealized.get(key, ZERO) if by == "strategy" else None
        net = g["realized"] - g["fees"]
        rows.append({by: key, "fills": g["fills"], "realized": numbers.money(g["realized"], g["places"]),
                     "fees": numbers.money(g["fees"], g["places"]), "net": numbers.money(net, g["places"]),
                     "unrealized": numbers.money(u, g["places"]) if by == "strategy" else None,
                     "total": numbers.money(net + u, g["places"]) if by == "strategy" and u is not None else None})
    return rows


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def iso(ts_ms: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms / 1000)) + f".{int(ts_ms) % 1000:03d}Z"


def parse_since(text: str | None) -> float:
    """``30m``, ``2h``, ``7d`` ago, or an ISO date/time (UTC); milliseconds since the epoch."""
    if not text:
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return (time.time() - float(text[:-1]) * units[text[-1]]) * 1000
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since takes 30m, 2h, 7d or an ISO date/time, not {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp() * 1000
