"""What a backtest produced, per strategy and in total: ``report.json``, ``report.html``, ``equity.png``.

Figures come from the run's own journals (every fill, fee and realized PnL exactly as the executor core
booked it) and from the equity samples the replayer took in virtual time (PnL marked to the book mid).

- PnL: realized (by trades), fees, funding (perps: received > 0, paid < 0, from the journal's funding
  payments), unrealized at the end, total = realized + funding + unrealized - fees.
- Drawdown: the largest fall of total PnL from its running peak, in quote currency and as a share of the
  strategy's capital (its allocation in quote assets).
- Sharpe and Sortino: of the returns per period (PnL change / capital), the period being the run's length
  / 500 but at least a minute, annualized with the number of periods in a year, risk-free rate 0. None when
  fewer than 3 periods or no variation. (Runs of a few hours give noisy, large annualized figures.)
- Exposure: the time share with an open position, and the mean and peak |position| x mark.
"""

from __future__ import annotations

import html
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from wispd.backtest.png import PALETTE, line_chart

QUOTES = {"USDT", "USDC", "USD", "BUSD", "DAI", "FDUSD", "TUSD", "EUR"}
YEAR_S = 365 * 86_400
RETURN_PERIOD_MIN_S = 60.0  # Sharpe/Sortino from returns over at least a minute (daily for runs of a year or more)
RETURN_PERIODS_MAX = 500


def journal_rows(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        fills = [dict(r) for r in db.execute("SELECT * FROM fills ORDER BY id")]
        orders = [dict(r) for r in db.execute("SELECT client_id, strategy, signal_id, action, exchange, market, "
                                              "symbol, side, order_type, qty, price, tif, status, filled, "
                                              "avg_price, fees, reason, created_ms, updated_ms FROM orders "
                                              "ORDER BY created_ms, client_id")]
        signals = [dict(r) for r in db.execute("SELECT strategy, signal_id, received_ms, status, reason FROM signals "
                                               "ORDER BY received_ms, strategy, signal_id")]
        funding = [dict(r) for r in db.execute("SELECT * FROM funding ORDER BY funding_ts, strategy")]
    finally:
        db.close()
    return {"fills": fills, "orders": orders, "signals": signals, "funding": funding}


def _stats(samples: list[list[float]], capital: float) -> dict[str, Any]:
    if not samples:
        return {"max_drawdown": 0.0, "max_drawdown_pct": None, "sharpe": None, "sortino": None,
                "time_in_market": 0.0, "mean_exposure": 0.0, "peak_exposure": 0.0}
    peak, mdd = -math.inf, 0.0
    for s in samples:
        peak = max(peak, s[1])
        mdd = max(mdd, peak - s[1])
    span_s = (samples[-1][0] - samples[0][0]) / 1000
    period_s = max(RETURN_PERIOD_MIN_S, span_s / RETURN_PERIODS_MAX)
    points: list[list[float]] = []
    for s in samples:  # one point per return period (the last sample in it)
        if points and int(s[0] / 1000 // period_s) == int(points[-1][0] / 1000 // period_s):
            points[-1] = s
        else:
            points.append(s)
    rets = [(b[1] - a[1]) / (capital or 1.0) for a, b in zip(points, points[1:], strict=False)]
    sharpe = sortino = None
    if len(rets) >= 2:
        scale = math.sqrt(YEAR_S / period_s)
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        down = math.sqrt(sum(min(0.0, r) ** 2 for r in rets) / len(rets))
        sharpe = mean / sd * scale if sd > 0 else None
        sortino = mean / down * scale if down > 0 else None
    exposures = [s[4] for s in samples]
    return {"max_drawdown": mdd, "max_drawdown_pct": (mdd / capital * 100) if capital else None,
            "sharpe": sharpe, "sortino": sortino,
            "time_in_market": sum(1 for e in exposures if e > 0) / len(exposures),
            "mean_exposure": sum(exposures) / len(exposures), "peak_exposure": max(exposures)}


def build(result: Any, capital: dict[str, dict[str, float]], meta: dict[str, Any]) -> dict[str, Any]:
    """The report document (what ``report.json`` holds)."""
    rows: dict[str, list[dict[str, Any]]] = {"fills": [], "orders": [], "signals": [], "funding": []}
    for path in result.accounts.values():
        for k, v in journal_rows(path).items():
            rows[k] += v
    strategies: dict[str, Any] = {}
    for name, lane in sorted(result.lanes.items()):
        fills = [f for f in rows["fills"] if f["strategy"] == name]
        closing = [f for f in fills if f.get("realized") not in (None, "", "0") and float(f["realized"]) != 0]
        samples = result.samples.get(name, [])
        cap = sum(v for a, v in capital.get(name, {}).items() if a in QUOTES)
        last = samples[-1] if samples else [0, 0.0, 0.0, 0.0, 0.0]
        realized = sum(float(f.get("realized") or 0) for f in fills)
        fees = sum(float(f["fee"]) for f in fills)
        funding = -sum(float(f["amount"]) for f in rows["funding"] if f["strategy"] == name)  # > 0: received
        strategies[name] = {
            "account": lane["account"], "exit_code": lane["exit_code"], "error": lane["error"],
            "signals": lane["signals"], "signals_by_status": _count(r["status"] for r in rows["signals"]
                                                                     if r["strategy"] == name),
            "orders": sum(1 for o in rows["orders"] if o["strategy"] == name),
            "fills": len(fills), "trades": len(closing),
            "wins": sum(1 for f in closing if float(f["realized"]) > 0),
            "losses": sum(1 for f in closing if float(f["realized"]) < 0),
            "volume": sum(float(f["price"]) * float(f["qty"]) for f in fills),
            "capital": cap, "pnl": {"realized": realized, "fees": fees, "funding": funding,
                                     "unrealized": last[1] - (realized - fees + funding), "total": last[1]},
            "return_pct": (last[1] / cap * 100) if cap else None,
            **_stats(samples, cap),
            "equity": samples,
        }
    total_samples = _sum_series([s["equity"] for s in strategies.values()])
    total_cap = sum(s["capital"] for s in strategies.values())
    total = {k: sum(s[k] for s in strategies.values()) for k in ("signals", "orders", "fills", "trades", "wins",
                                                                 "losses", "volume", "capital")}
    total["pnl"] = {k: sum(s["pnl"][k] for s in strategies.values()) for k in ("realized", "fees", "funding",
                                                                               "unrealized", "total")}
    total["return_pct"] = (total["pnl"]["total"] / total_cap * 100) if total_cap else None
    total.update(_stats(total_samples, total_cap))
    total["equity"] = total_samples
    return {"v": 1, **meta, "replayed_records": result.records, "gaps": result.gaps, "wall_seconds": result.wall_s,
            "replayer_cpu_seconds": result.cpu_s,
            "events_to_strategies": result.events_to_strategies, "strategies": strategies, "total": total,
            "fills": rows["fills"]}


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _sum_series(series: list[list[list[float]]]) -> list[list[float]]:
    """The strategies' samples added up per time (all are sampled at the same instants)."""
    by_t: dict[float, list[float]] = {}
    for s in series:
        for row in s:
            have = by_t.setdefault(row[0], [row[0], 0.0, 0.0, 0.0, 0.0])
            for i in range(1, 5):
                have[i] += row[i]
    return [by_t[t] for t in sorted(by_t)]


def write(out_dir: Path, doc: dict[str, Any]) -> dict[str, Path]:
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html", "png": out_dir / "equity.png"}
    paths["json"].write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    series = [[(r[0] / 1000, r[1]) for r in s["equity"]] for s in doc["strategies"].values()]
    line_chart(paths["png"], series + [[(r[0] / 1000, r[1]) for r in doc["total"]["equity"]]])
    paths["html"].write_text(html_page(doc))
    return paths


# --------------------------------------------------------------------------- the HTML page

def _svg(series: dict[str, list[tuple[float, float]]], title: str, unit: str, width: int = 920,
         height: int = 260) -> str:
    pad_l, pad_r, pad_t, pad_b = 70, 20, 28, 34
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f"<p class=empty>{html.escape(title)}: no samples</p>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(min(p[1] for p in pts), 0.0), max(max(p[1] for p in pts), 0.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return height - pad_b - (y - y0) / (y1 - y0) * (height - pad_t - pad_b)

    out = [f'<svg viewBox="0 0 {width} {height}" class=chart role=img aria-label="{html.escape(title)}">',
           f'<text x="{pad_l}" y="18" class=title>{html.escape(title)} '
           f'<tspan class=unit>({html.escape(unit)})</tspan></text>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" class=grid />'
                   f'<text x="{pad_l - 6}" y="{sy(y) + 4:.1f}" class=ylab>{y:,.2f}</text>')
    for i in range(6):
        x = x0 + (x1 - x0) * i / 5
        label = time.strftime("%m-%d %H:%M", time.gmtime(x))
        out.append(f'<text x="{sx(x):.1f}" y="{height - 12}" class=xlab>{label}</text>')
    out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" class=zero />')
    for n, (name, s) in enumerate(series.items()):
        color = "#{:02x}{:02x}{:02x}".format(*PALETTE[n % len(PALETTE)])
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8">'
                   f"<title>{html.escape(name)}</title></polyline>")
        out.append(f'<text x="{width - pad_r - 4}" y="{pad_t + 14 * (n + 1)}" class=legend fill="{color}">'
                   f"{html.escape(name)}</text>")
    out.append("</svg>")
    return "".join(out)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return html.escape(str(v))


def html_page(doc: dict[str, Any]) -> str:
    strategies = doc["strategies"]
    equity = {name: [(r[0] / 1000, r[1]) for r in s["equity"]] for name, s in strategies.items()}
    if len(strategies) > 1:
        equity["total"] = [(r[0] / 1000, r[1]) for r in doc["total"]["equity"]]

    def drawdown(rows: list[list[float]]) -> list[tuple[float, float]]:
        peak, out = -math.inf, []
        for r in rows:
            peak = max(peak, r[1])
            out.append((r[0] / 1000, r[1] - peak))
        return out

    dd = {name: drawdown(s["equity"]) for name, s in strategies.items()}
    exposure = {name: [(r[0] / 1000, r[4]) for r in s["equity"]] for name, s in strategies.items()}
    cols = [("signals", 0), ("fills", 0), ("trades", 0), ("wins", 0), ("losses", 0)]
    head = "".join(f"<th>{c}</th>" for c, _ in cols)
    body = []
    for name, s in [*strategies.items(), ("total", doc["total"])]:
        cells = "".join(f"<td>{_fmt(s[c])}</td>" for c, _ in cols)
        p = s["pnl"]
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{_fmt(p['realized'])}</td><td>{_fmt(p['fees'])}</td>"
                    f"<td>{_fmt(p['funding'])}</td>"
                    f"<td>{_fmt(p['unrealized'])}</td><td><b>{_fmt(p['total'])}</b></td>"
                    f"<td>{_fmt(s['return_pct'], 3)}</td><td>{_fmt(s['max_drawdown'])}</td>"
                    f"<td>{_fmt(s['sharpe'])}</td><td>{_fmt(s['sortino'])}</td>"
                    f"<td>{_fmt(s['time_in_market'] * 100, 1)}%</td><td>{_fmt(s['peak_exposure'])}</td></tr>")
    fills = doc.get("fills") or []
    fill_rows = "".join(
        f"<tr><td>{html.escape(time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(f['ts_ms'] / 1000)))}"
        f"</td><td>{html.escape(str(f['strategy']))}</td><td>{html.escape(str(f['symbol']))}</td>"
        f"<td class={html.escape(str(f['side']))}>{html.escape(str(f['side']))}</td><td>{html.escape(f['price'])}</td>"
        f"<td>{html.escape(f['qty'])}</td><td>{html.escape(f['fee'])}</td><td>{html.escape(str(f['liquidity']))}</td>"
        f"<td>{html.escape(str(f.get('realized') or ''))}</td></tr>" for f in fills[-500:])
    errors = "".join(f"<p class=error>{html.escape(n)}: {html.escape(s['error'])}</p>" for n, s in strategies.items()
                     if s["error"])
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>wispd backtest {html.escape(doc.get('id', ''))}</title>
<style>
body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}
h1{{font-size:20px}} table{{border-collapse:collapse;margin:12px 0;font-variant-numeric:tabular-nums}}
td,th{{padding:3px 6px;font-size:13px;border-bottom:1px solid #ddd;text-align:right}} th:first-child{{text-align:left}}
.chart{{width:100%;height:auto;margin:8px 0;background:#fafafa}} .grid{{stroke:#e4e4e4}} .zero{{stroke:#999}}
.ylab{{font-size:11px;text-anchor:end;fill:#555}} .xlab{{font-size:11px;text-anchor:middle;fill:#555}}
.title{{font-size:13px;font-weight:600}} .legend{{font-size:12px;text-anchor:end}} .unit{{font-size:11px;fill:#777}}
.buy{{color:#1a7f37}} .sell{{color:#cf222e}} .error{{color:#cf222e}} .meta{{color:#555}}
</style></head><body>
<h1>Backtest {html.escape(doc.get('id', ''))}</h1>
<p class=meta>{html.escape(doc.get('from', ''))} → {html.escape(doc.get('to', ''))} (virtual time) ·
config {html.escape(doc.get('config', ''))} · data {html.escape(doc.get('data', ''))} ·
{doc.get('replayed_records', 0):,} records replayed in {doc.get('wall_seconds', 0):.1f} s ·
params {html.escape(orjson.dumps(doc.get('params') or {}).decode())}</p>
{errors}
<table><tr><th>strategy</th>{head}<th>realized</th><th>fees</th><th>funding</th><th>unrealized</th><th>total PnL</th><th>return %</th>
<th>max DD</th><th>Sharpe</th><th>Sortino</th><th>in market</th><th>peak exposure</th></tr>{''.join(body)}</table>
{_svg(equity, "Equity (total PnL)", "quote")}
{_svg(dd, "Drawdown from the running peak", "quote")}
{_svg(exposure, "Exposure (|position| x mark)", "quote")}
<h2>Fills{' (last 500)' if len(fills) > 500 else ''}</h2>
<table><tr><th>time</th><th>strategy</th><th>symbol</th><th>side</th><th>price</th><th>qty</th><th>fee</th>
<th>liquidity</th><th>realized</th></tr>{fill_rows}</table>
<p class=meta>The fill model is the paper engine's; docs/backtesting.md says what it assumes.</p>
</body></html>
"""
