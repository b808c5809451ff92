"""Writes deploy/grafana/wispd.json (a Grafana dashboard over docs/metrics.md's catalogue).

    python deploy/grafana/generate.py
"""

from __future__ import annotations

import json
from pathlib import Path

PANELS = [
    # (title, type, [(expr, legend)], unit)
    ("Children running", "stat", [("sum(wispd_child_up)", "running"), ("sum(wispd_child_wanted)", "wanted")], "none"),
    ("Child state", "timeseries", [("wispd_child_state", "{{child}}")], "none"),
    ("Restarts (1h) by child and reason", "timeseries",
     [("sum by (child, reason) (increase(wispd_child_restarts_total[1h]))", "{{child}} {{reason}}")], "none"),
    ("Backoff", "timeseries", [("wispd_child_backoff_seconds", "{{child}}")], "s"),
    ("Heartbeat age", "timeseries", [("wispd_child_heartbeat_age_seconds", "{{child}}")], "s"),
    ("CPU per child", "timeseries", [("rate(wispd_child_cpu_seconds_total[1m])", "{{child}}")], "percentunit"),
    ("Memory (RSS / USS)", "timeseries", [("wispd_child_memory_rss_bytes", "{{child}} rss"),
                                         ("wispd_child_memory_uss_bytes", "{{child}} uss")], "bytes"),
    ("Market data messages/s", "timeseries",
     [("sum by (exchange, channel) (rate(wispd_md_messages_total[1m]))", "{{exchange}} {{channel}}")], "ops"),
    ("Feed staleness", "timeseries", [("max by (exchange, channel) (wispd_md_staleness_seconds)",
                                       "{{exchange}} {{channel}}")], "s"),
    ("Stale streams", "stat", [("sum(wispd_md_stale_streams)", "stale")], "none"),
    ("Reconnects (1h)", "timeseries",
     [("sum by (exchange, channel) (increase(wispd_md_reconnects_total[1h]))", "{{exchange}} {{channel}}")], "none"),
    ("Ingest-to-receive lag p50 / p99", "timeseries",
     [("histogram_quantile(0.5, sum by (le, exchange) (rate(wispd_md_lag_seconds_bucket[5m])))", "p50 {{exchange}}"),
      ("histogram_quantile(0.99, sum by (le, exchange) (rate(wispd_md_lag_seconds_bucket[5m])))", "p99 {{exchange}}")],
     "s"),
    ("Sequence gaps / dropped frames", "timeseries",
     [("sum by (strategy) (rate(wispd_md_gaps_total[5m]))", "gaps {{strategy}}"),
      ("sum by (strategy) (rate(wispd_md_dropped_total[5m]))", "dropped {{strategy}}")], "ops"),
    ("Signals by outcome", "timeseries",
     [("sum by (strategy, outcome) (rate(wispd_signals_total[5m]))", "{{strategy}} {{outcome}}")], "ops"),
    ("Rejects by reason", "timeseries", [("sum by (reason) (rate(wispd_rejects_total[5m]))", "{{reason}}")], "ops"),
    ("Orders and fills", "timeseries", [("sum(rate(wispd_orders_total[5m]))", "orders"),
                                        ("sum(rate(wispd_fills_total[5m]))", "fills")], "ops"),
    ("Signal-to-order / order-to-ack p99", "timeseries",
     [("histogram_quantile(0.99, sum by (le) (rate(wispd_signal_to_order_seconds_bucket[5m])))", "signal->order"),
      ("histogram_quantile(0.99, sum by (le) (rate(wispd_order_to_ack_seconds_bucket[5m])))", "order->ack")], "s"),
    ("Journal commit p99", "timeseries",
     [("histogram_quantile(0.99, sum by (le, account) (rate(wispd_journal_commit_seconds_bucket[5m])))",
       "{{account}}")], "s"),
    ("PnL per strategy", "timeseries", [('sum by (strategy) (wispd_pnl_quote{component="total"})', "{{strategy}}")],
     "none"),
    ("Exposure per strategy", "timeseries", [("sum by (strategy) (wispd_exposure_quote)", "{{strategy}}")], "none"),
    ("Positions", "table", [("wispd_position_quantity", "{{strategy}} {{symbol}}")], "none"),
    ("Trading halted", "stat", [("max(wispd_trading_halted)", "halted")], "none"),
    ("Control commands", "timeseries", [("sum by (verb, result) (increase(wispd_control_commands_total[1h]))",
                                         "{{verb}} {{result}}")], "none"),
]


def dashboard() -> dict:
    panels = []
    for i, (title, kind, targets, unit) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "title": title, "type": kind, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": (i // 3) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + j), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for j, (expr, legend) in enumerate(targets)],
        })
    return {
        "title": "wispd", "uid": "wispd-overview", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "tags": ["wispd", "trading"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("wispd.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")
