"""Every metric wispd exposes: name, type, help, labels. One table; docs/metrics.md is generated from it.

Names follow Prometheus conventions: ``wispd_`` prefix, base units (seconds, bytes), ``_total`` counters.
"""

from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    type: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]
    source: str  # who produces it


CATALOGUE: dict[str, Metric] = {
    # ---- the daemon and its children (produced by wispd itself)
    "wispd_up": Metric("gauge", "1 while wispd runs (the scrape succeeding says the same)", (), "wispd"),
    "wispd_ready": Metric("gauge", "1 once every wanted child reached RUNNING after start (READY=1 sent)", (),
                          "wispd"),
    "wispd_trading_halted": Metric("gauge", "1 while wispctl halt is in force", (), "wispd"),
    "wispd_health": Metric("gauge", "the health verdict: 0 ok, 1 degraded (halted, operator-stopped, stale feed), "
                           "2 failing (a wanted child down, starting, shutting down)", (), "wispd"),
    "wispd_child_state": Metric("gauge", "child state code: 0 STOPPED, 10 STARTING, 20 RUNNING, 30 BACKOFF, "
                                "40 STOPPING, 100 EXITED, 200 FATAL", ("child", "kind"), "wispd"),
    "wispd_child_up": Metric("gauge", "1 when the child is RUNNING", ("child", "kind"), "wispd"),
    "wispd_child_wanted": Metric("gauge", "1 when the child should run (not stopped by an operator)",
                                 ("child", "kind"), "wispd"),
    "wispd_child_restarts_total": Metric("counter", "restarts by reason (crash, signal, exit, heartbeat, memory, "
                                         "start_timeout, spawn_error)", ("child", "kind", "reason"), "wispd"),
    "wispd_child_backoff_seconds": Metric("gauge", "seconds left before the next start attempt (0 unless BACKOFF)",
                                          ("child", "kind"), "wispd"),
    "wispd_child_heartbeat_age_seconds": Metric("gauge", "seconds since the child was last heard from (alive "
                                                "children only)", ("child", "kind"), "wispd"),
    "wispd_child_cpu_seconds_total": Metric("counter", "CPU time (user + system), summed over the child's "
                                            "processes since wispd started", ("child", "kind"), "wispd"),
    "wispd_child_memory_rss_bytes": Metric("gauge", "resident set size of the child's process", ("child", "kind"),
                                           "wispd"),
    "wispd_child_memory_uss_bytes": Metric("gauge", "unique set size (memory freed if it exited)",
                                           ("child", "kind"), "wispd"),
    "wispd_child_memory_limit_bytes": Metric("gauge", "configured memory limit (0 = none)", ("child", "kind"),
                                             "wispd"),
    "wispd_control_commands_total": Metric("counter", "control commands by verb and result (ok, error)",
                                           ("verb", "result"), "wispd"),
    "wispd_link_bad_messages_total": Metric("counter", "malformed or out-of-range messages on the supervisor link, "
                                            "dropped (the child and wispd carry on)", ("child",), "wispd"),
    # ---- market data, ingestor side
    "wispd_md_messages_total": Metric("counter", "messages published per exchange and channel",
                                      ("exchange", "channel"), "ingestor"),
    "wispd_md_reconnects_total": Metric("counter", "stream reconnects (re-watch after an error or a long silence)",
                                        ("exchange", "channel"), "ingestor"),
    "wispd_md_streams": Metric("gauge", "exchange streams currently open", ("exchange",), "ingestor"),
    "wispd_md_stale_streams": Metric("gauge", "streams currently flagged stale", ("exchange", "channel"),
                                     "ingestor"),
    "wispd_md_staleness_seconds": Metric("gauge", "longest silence among the streams of a channel",
                                         ("exchange", "channel"), "ingestor"),
    "wispd_md_bad_requests_total": Metric("counter", "malformed snapshot/history requests answered with an error",
                                          ("exchange",), "ingestor"),
    # ---- market data, subscriber (strategy) side
    "wispd_md_received_total": Metric("counter", "messages decoded into a strategy's cache",
                                      ("strategy", "exchange", "channel"), "strategy"),
    "wispd_md_gaps_total": Metric("counter", "messages missed (sequence gaps) on non-conflated channels",
                                  ("strategy", "exchange", "channel"), "strategy"),
    "wispd_md_dropped_total": Metric("counter", "malformed frames dropped by a strategy's receiver", ("strategy",),
                                     "strategy"),
    "wispd_md_resyncs_total": Metric("counter", "resynchronisations after an ingestor restart (epoch change)",
                                     ("strategy",), "strategy"),
    "wispd_md_lag_seconds": Metric("histogram", "ingest-to-receive lag of market data", ("exchange", "channel"),
                                   "strategy"),
    "wispd_signals_emitted_total": Metric("counter", "signals emitted by a strategy", ("strategy",), "strategy"),
    # ---- recorders (wispd/data/recorder.py)
    "wispd_recorder_records_total": Metric("counter", "market-data frames written to segment files",
                                           ("recorder", "exchange"), "recorder"),
    "wispd_recorder_gaps_total": Metric("counter", "sequence gaps recorded (frames the bus dropped before the "
                                        "recorder got them)", ("recorder", "exchange"), "recorder"),
    "wispd_recorder_bytes": Metric("gauge", "bytes of finished segments in the recorder's data directory",
                                   ("recorder",), "recorder"),
    "wispd_recorder_backlog": Metric("gauge", "records received but not yet written (the disk refused them; "
                                     "retried every second)", ("recorder",), "recorder"),
    # ---- execution
    "wispd_signals_total": Metric("counter", "signals by strategy and outcome (accepted, rejected, filled, ...)",
                                  ("account", "strategy", "outcome"), "executor"),
    "wispd_orders_total": Metric("counter", "orders sent (after the journaled intent)", ("account",), "executor"),
    "wispd_fills_total": Metric("counter", "fills", ("account",), "executor"),
    "wispd_rejects_total": Metric("counter", "rejected signals by reason code", ("account", "reason"), "executor"),
    "wispd_bad_frames_total": Metric("counter", "signal frames that were not one JSON object", ("account",),
                                     "executor"),
    "wispd_internal_errors_total": Metric("counter", "signals whose processing raised unexpectedly (rejected with "
                                          "code internal_error; the executor carried on)", ("account", "kind"),
                                          "executor"),
    "wispd_journal_healthy": Metric("gauge", "0 while the journal cannot be written (the account is halted "
                                    "until a commit succeeds)", ("account",), "executor"),
    "wispd_signal_to_order_seconds": Metric("histogram", "from a signal's creation to its order being sent",
                                            ("account",), "executor"),
    "wispd_order_to_ack_seconds": Metric("histogram", "from sending an order to its first acknowledgement",
                                         ("account",), "executor"),
    "wispd_journal_commit_seconds": Metric("histogram", "SQLite journal commit latency", ("account",), "executor"),
    "wispd_position_quantity": Metric("gauge", "signed position", ("account", "strategy", "exchange", "market",
                                                                   "symbol"), "executor"),
    "wispd_balance_drifts_total": Metric("counter", "live accounts: balance differences between the exchange "
                                         "and the journal taken into the unassigned funds (deposits, "
                                         "withdrawals, trades outside wispd, funding)", ("account", "asset"),
                                         "executor"),
    "wispd_orphaned_position_quantity": Metric("gauge", "signed position left by a strategy removed from the "
                                               "config (nothing manages it until it is closed: wispctl close)",
                                               ("account", "strategy", "exchange", "market", "symbol"), "executor"),
    "wispd_kill_switch_tripped": Metric("gauge", "1 per tripped kill switch (scope: a strategy, or \"account\"); "
                                        "it holds until wispctl resume", ("account", "scope"), "executor"),
    "wispd_exposure_quote": Metric("gauge", "absolute position value at the mid, in quote units",
                                   ("account", "strategy"), "executor"),
    "wispd_pnl_quote": Metric("gauge", "PnL in quote units by component (realized, unrealized, fees, total)",
                              ("account", "strategy", "component"), "executor"),
    "wispd_open_orders": Metric("gauge", "working orders", ("account",), "executor"),
    "wispd_order_stream_up": Metric("gauge", "live accounts: 1 while the private order and trade streams are "
                                    "connected (polling covers the gaps)", ("account",), "executor"),
    "wispd_exchange_errors_total": Metric("counter", "live accounts: orders the exchange refused or could not "
                                          "place, by code (insufficient_funds, invalid_order, rate_limited, auth, "
                                          "not_placed, ...)", ("account", "code"), "executor"),
    "wispd_unknown_exchange_orders": Metric("gauge", "live accounts: open orders on the exchange the journal does "
                                            "not know (found at reconciliation; left alone unless configured)",
                                            ("account",), "executor"),
}


def markdown() -> str:
    """docs/metrics.md, generated from the table above (a test keeps the file in step)."""
    lines = ["# Metrics", "",
             "Served by wispd at `http://<daemon.metrics.bind>/metrics` (default `127.0.0.1:9464`), next to",
             "`/health` (200 when every wanted child runs and every feed is fresh, 503 otherwise; `wispctl health`",
             "says the same). Children report to wispd over the supervisor link; wispd adds the counts of a",
             "child's earlier processes, so counters never go backwards when a child restarts, and the gauges of a",
             "process that ended disappear with it. A scrape is answered with series built for it (wispd's own",
             "state as of the scrape); children send their snapshots every few seconds (strategies every 5 s,",
             "executors and ingestors every second), and wispd reads CPU and RSS of children without a memory",
             "limit every 5 s, USS every 60 s. This file is generated from `wispd/metrics/catalogue.py`.", "",
             "| metric | type | labels | produced by | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, m in CATALOGUE.items():
        lines.append(f"| `{name}` | {m.type} | {', '.join(m.labels) or '-'} | {m.source} | {m.help} |")
    lines += ["", "Histogram buckets (seconds): 0.1 ms to 10 s. Example queries:", "",
              "```promql",
              "sum by (child) (increase(wispd_child_restarts_total[1h]))          # restarts per child",
              "max by (exchange, channel) (wispd_md_staleness_seconds)            # feed freshness",
              "histogram_quantile(0.99, sum by (le) (rate(wispd_md_lag_seconds_bucket[5m])))",
              "sum by (strategy) (wispd_pnl_quote{component=\"total\"})            # PnL per strategy",
              "sum by (reason) (rate(wispd_rejects_total[5m]))                    # why signals are refused",
              "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
