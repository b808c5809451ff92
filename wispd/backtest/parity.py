"""``wispctl backtest --parity``: replay a recorded paper session through today's code and diff it against
that session's own journal.

The backtest/live gap every other framework's users complain about becomes a number: the orders and fills
of each strategy, in order, compared field by field (side, symbol, type, quantity, price; fills by side,
quantity and price), with the first divergence named (its index, both sides' rows and times), how many
matched, and the mean fill-price error over the aligned fills. Times are not compared exactly (the live
strategy received each frame microseconds after the recorder did), only reported.

Identical means the strategy, the executor's checks and the paper engine made the same decisions on the
same data: on the sim exchange, with the session recorded by a ``[recorders]`` child, that is what comes out.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

ORDER_FIELDS = ("side", "symbol", "order_type", "qty", "price", "tif")
FILL_FIELDS = ("side", "symbol", "qty", "price", "liquidity")
# Shown beside a divergent row, never compared (a strategy's own ids differ between runs unless it names
# its signals): with them a decision the replay skipped or added is seen at once ("step-1235" vs "step-1240").
SHOWN = ("signal_id",)


def _rows(path: Path, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


EDGE_US = 5_000  # the window opens just before the session's first signal and closes just after its last
START_LEAD_US = 100  # a replayed strategy starts this long before the instant its first live signal was built


def session_window(journal: Path) -> tuple[int, int] | None:
    """The session's decisions, in microseconds: from just before its first signal to just after its last.

    The journal does not say when the strategy started or stopped, so the replayed strategy starts at the
    first signal, with the feed's latest state as its snapshot (the replay's warm-up), and stops after the
    last: decisions the live strategy could not have made (it was not running) are not asked of the replay."""
    rows = _rows(journal, "SELECT MIN(received_ms) AS a, MAX(received_ms) AS b FROM signals", ())
    if not rows or rows[0]["a"] is None:
        return None
    return int(rows[0]["a"] * 1000) - EDGE_US, int(rows[0]["b"] * 1000) + EDGE_US


def starts(journal: Path) -> dict[str, int]:
    """When each strategy's first decision of the session was taken (us), a hair earlier: the ``woke`` its
    first signal carries (when its loop woke to take that decision: for a strategy on ``ctx.every``, when
    its schedule began), else its ``ts`` (when it built the signal; signals from before ``woke`` existed).
    Replayed, each strategy starts then, so a strategy on timers ticks at the instants the live one did, not
    at the window's start, and decides on the books it had. (Under load, building a signal took 16 ms
    after the tick: started at ``ts``, the replay saw a book that arrived in between and quoted off it.)"""
    import orjson

    out: dict[str, int] = {}
    for row in _rows(journal, "SELECT strategy, payload FROM signals ORDER BY received_ms", ()):
        if row["strategy"] in out or row["payload"] is None:
            continue
        try:
            payload = orjson.loads(row["payload"])
            ts = payload.get("woke", payload.get("ts"))
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            out[row["strategy"]] = int(ts * 1000) - START_LEAD_US
    return out


def ends(journal: Path) -> dict[str, int]:
    """When each strategy's live session ended, as far as the journal can tell (us): just after its last
    signal. A strategy stopped while others went on must not be asked, replayed, for decisions it never took
    live: the replay stops it then, and its comparison window closes then."""
    return {row["strategy"]: int(row["b"] * 1000) + EDGE_US
            for row in _rows(journal, "SELECT strategy, MAX(received_ms) AS b FROM signals GROUP BY strategy", ())
            if row["b"] is not None}


def records(journal: Path, strategy: str, t_from_us: int, t_to_us: int) -> dict[str, list[dict[str, Any]]]:
    lo, hi = t_from_us / 1000, t_to_us / 1000
    orders = _rows(journal, "SELECT * FROM orders WHERE strategy=? AND created_ms>=? AND created_ms<? "
                            "ORDER BY created_ms, client_id", (strategy, lo, hi))
    # the fills of those orders, whenever they came (the last order's fill lands after the window's end)
    fills = _rows(journal, "SELECT f.*, o.signal_id FROM fills f JOIN orders o ON o.client_id = f.client_id WHERE o.strategy=? "
                           "AND o.created_ms>=? AND o.created_ms<? ORDER BY f.ts_ms, f.id", (strategy, lo, hi))
    return {"orders": orders, "fills": fills}


def _diff(kind: str, live: list[dict[str, Any]], replay: list[dict[str, Any]], fields: tuple[str, ...],
          time_key: str) -> dict[str, Any]:
    matched = 0
    first = None
    for a, b in zip(live, replay, strict=False):
        if any(str(a.get(f)) != str(b.get(f)) for f in fields):
            first = {"index": matched, "live": {f: a.get(f) for f in (*fields, time_key, *SHOWN)},
                     "backtest": {f: b.get(f) for f in (*fields, time_key, *SHOWN)},
                     "fields": [f for f in fields if str(a.get(f)) != str(b.get(f))]}
            break
        matched += 1
    if first is None and len(live) != len(replay):
        longer, name = (live, "live") if len(live) > len(replay) else (replay, "backtest")
        first = {"index": matched, name: {f: longer[matched].get(f) for f in (*fields, time_key, *SHOWN)},
                 "fields": [f"{name} has {abs(len(live) - len(replay))} more {kind}"]}
    out: dict[str, Any] = {"live": len(live), "backtest": len(replay), "matched": matched, "first_divergence": first}
    if kind == "fills":
        pairs = list(zip(live, replay, strict=False))
        errors = [abs(float(a["price"]) - float(b["price"])) for a, b in pairs]
        out["mean_price_error"] = sum(errors) / len(errors) if errors else 0.0
        out["fill_rate"] = (len(replay) / len(live)) if live else None
        lags = [abs(float(a["ts_ms"]) - float(b["ts_ms"])) for a, b in pairs[:matched]]
        out["max_time_difference_ms"] = max(lags) if lags else 0.0
    return out


# A live decision taken while a book was in flight (published by the ingestor, not yet written by the
# recorder, or written just before the decision and maybe not yet applied by the strategy) could have been
# taken on either book: the recording cannot say which the live strategy had.
IN_FLIGHT_LAG_MS = 5.0  # how much later than the recorder the live strategy may apply a frame (under load)


def in_flight(data: Path, live: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    """The book of the order's market that was in flight when the live decision behind ``row`` was taken
    (its signal's ``woke``, else ``ts``), if one was: then the two sides may have decided on different
    books through no fault of the code (the recorder and the strategy receive each frame at their own
    instants; under load they differ by milliseconds). None when the decision was clear of every book."""
    import orjson

    from wispd import protocol
    from wispd.data import store

    sig = _rows(live, "SELECT payload FROM signals WHERE strategy=? AND signal_id=?", (row["strategy"], row["signal_id"]))
    try:
        payload = orjson.loads(sig[0]["payload"]) if sig and sig[0]["payload"] else {}
        decided = float(payload.get("woke", payload.get("ts")))
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return None
    topic = f"md.{row['exchange']}.{row['market']}.{row['symbol']}.book".encode()
    window_us = 1_000_000
    for rec in store.replay(data, int(decided * 1000) - window_us, int(decided * 1000) + window_us, {topic}):
        parsed = protocol.parse_md_frame(rec.data)
        published = parsed[1].get("ts_ingest") if parsed is not None else None
        if type(published) not in (int, float):
            continue
        env = parsed[1]
        recorded = rec.recv_us / 1000
        if published <= decided <= recorded + IN_FLIGHT_LAG_MS:
            return {"seq": env.get("seq"), "decided_ms": decided, "published_ms_before": round(decided - published, 3),
                    "recorded_ms_after": round(recorded - decided, 3)}
    return None


def compare(live: Path, replay: Path, strategies: list[str], t_from_us: int, t_to_us: int,
            stops: dict[str, int] | None = None, data: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"live_journal": str(live), "backtest_journal": str(replay), "strategies": {}}
    identical = True
    for strategy in strategies:
        end = min(t_to_us, (stops or {}).get(strategy, t_to_us))  # its own session's end
        a = records(live, strategy, t_from_us, end)
        b = records(replay, strategy, t_from_us, end)
        doc = {"orders": _diff("orders", a["orders"], b["orders"], ORDER_FIELDS, "created_ms"),
               "fills": _diff("fills", a["fills"], b["fills"], FILL_FIELDS, "ts_ms")}
        doc["identical"] = doc["orders"]["first_divergence"] is None and doc["fills"]["first_divergence"] is None
        first = doc["orders"]["first_divergence"]
        if first is not None and data is not None and first["index"] < len(a["orders"]):
            near = in_flight(data, live, a["orders"][first["index"]])
            if near is not None:
                first["in_flight"] = near
        identical &= doc["identical"]
        out["strategies"][strategy] = doc
    out["identical"] = identical
    return out


def text(doc: dict[str, Any]) -> list[str]:
    lines = []
    for name, s in doc["strategies"].items():
        o, f = s["orders"], s["fills"]
        verdict = "identical" if s["identical"] else "DIVERGES"
        lines.append(f"{name}: {verdict}: orders {o['matched']}/{o['live']} matched (backtest {o['backtest']}), "
                     f"fills {f['matched']}/{f['live']} (backtest {f['backtest']}), mean fill-price error "
                     f"{f['mean_price_error']:.6g}")
        for kind in ("orders", "fills"):
            first = s[kind]["first_divergence"]
            if first:
                lines.append(f"  first divergence in {kind} at #{first['index']}: {', '.join(first['fields'])}")
                if first.get("in_flight"):
                    near = first["in_flight"]
                    lines.append(f"    the live decision was taken while book seq {near['seq']} was in flight (published "
                                 f"{near['published_ms_before']} ms before it, recorded {near['recorded_ms_after']} ms "
                                 "after): the recording cannot say which book the live strategy had, so this "
                                 "divergence may be timing, not code")
                for side in ("live", "backtest"):
                    if side in first:
                        lines.append(f"    {side:<8} {first[side]}")
    return lines
