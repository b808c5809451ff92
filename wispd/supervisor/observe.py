"""What the supervisor exposes about itself and its children: metric series and the health verdict.

Built in the main loop from state only the loop touches: the health verdict once per sample interval
(systemd's status line, ``/health``, ``wispctl health``), the metric series only when a scrape asks for them
(the HTTP thread asks, the loop builds on its next pass and hands them over whole; see
``wispd/metrics/exposition.py``). With 100 children the series are most of what the supervisor computes
each second, and a scraper asks every 15 s or so, so they are built for it, not on a clock.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from wispd.metrics.registry import labels_key
from wispd.supervisor.states import STATE_CODES, State

if TYPE_CHECKING:
    from wispd.supervisor.supervisor import Supervisor


def health(sup: Supervisor) -> dict[str, Any]:
    return verdict(sup, stale_feeds(sup))


def stale_feeds(sup: Supervisor) -> dict[str, float]:
    """Feeds an ingestor flags silent (its ``wispd_md_stale_streams`` gauge), by ``exchange:channel``."""
    stale: dict[str, float] = {}
    for child in sup.children.values():
        for name, labels, value in child.series.current.get("g", []):
            if name == "wispd_md_stale_streams" and isinstance(value, int | float) and value > 0 \
                    and isinstance(labels, dict):
                stale[f"{labels.get('exchange')}:{labels.get('channel')}"] = float(value)
    return stale


def series(sup: Supervisor) -> dict[str, Any]:
    """Every series wispd exposes, from the supervisor's own state and each child's latest snapshot."""
    now = time.monotonic()
    c: dict[Any, float] = {}
    g: dict[Any, float] = {}
    h: dict[Any, list[Any]] = {}

    def gauge(name: str, value: float, **labels: Any) -> None:
        g[(name, labels_key(labels))] = float(value)

    gauge("wispd_up", 1)
    gauge("wispd_ready", 1 if sup.ready_sent else 0)
    gauge("wispd_trading_halted", 1 if sup.desired.halted else 0)
    for (verb, result), n in sup.control_counts.items():
        c[("wispd_control_commands_total", labels_key({"verb": verb, "result": result}))] = float(n)
    for name, n in sup.link_bad.items():
        c[("wispd_link_bad_messages_total", labels_key({"child": name}))] = float(n)
    for child in sup.children.values():
        who = _who(child.name, child.kind)  # the child's label sets, made once (100 children: every second)
        g[("wispd_child_state", who)] = float(STATE_CODES[child.state])
        g[("wispd_child_up", who)] = 1.0 if child.state == State.RUNNING else 0.0
        g[("wispd_child_wanted", who)] = 1.0 if child.wanted else 0.0
        g[("wispd_child_backoff_seconds", who)] = \
            max(0.0, child.deadline - now) if child.state == State.BACKOFF and child.deadline else 0.0
        g[("wispd_child_memory_limit_bytes", who)] = float(child.spec.limits.memory_mb * 1024 * 1024)
        c[("wispd_child_cpu_seconds_total", who)] = child.cpu_s_total + child.usage.cpu_s
        for reason, key in _restart_keys(child.name, child.kind):
            c[key] = float(child.restarts_by_reason.get(reason, 0))
        if child.state.alive:
            g[("wispd_child_heartbeat_age_seconds", who)] = now - child.last_seen
            g[("wispd_child_memory_rss_bytes", who)] = float(child.usage.rss_bytes)
            g[("wispd_child_memory_uss_bytes", who)] = float(child.usage.uss_bytes)
        for key, value in child.series.counters().items():
            c[key] = c.get(key, 0.0) + value
        for key, value in child.series.gauges().items():
            g[key] = value
        for key, value in child.series.histograms().items():
            have = h.get(key)
            if have is None or have[0] != value[0]:
                h[key] = value
            else:  # the same series from several processes (e.g. lag seen by every strategy): add up
                h[key] = [have[0], [a + b for a, b in zip(have[1], value[1], strict=False)], have[2] + value[2],
                          have[3] + value[3]]
    gauge("wispd_health", HEALTH_CODES[health(sup)["status"]])
    return {"c": c, "g": g, "h": h}


HEALTH_CODES = {"ok": 0, "degraded": 1, "failing": 2}
RESTART_REASONS = ("crash", "signal", "exit", "heartbeat", "memory", "start_timeout", "spawn_error")


@functools.lru_cache(maxsize=4096)
def _who(name: str, kind: str) -> tuple[tuple[str, str], ...]:
    return labels_key({"child": name, "kind": kind})


@functools.lru_cache(maxsize=4096)
def _restart_keys(name: str, kind: str) -> tuple[tuple[str, Any], ...]:
    return tuple((r, ("wispd_child_restarts_total", labels_key({"child": name, "kind": kind, "reason": r})))
                 for r in RESTART_REASONS)


def verdict(sup: Supervisor, stale: dict[str, float]) -> dict[str, Any]:
    """ok, degraded or failing, with every reason. Failing: a wanted child is not running (crashed, FATAL,
    in backoff, hung), wispd is starting or shutting down. Degraded: it runs, but not everything trades or
    sees data: trading halted (all or some strategies, or an executor halted itself, e.g. an unwritable
    journal or a kill switch), a child stopped by the operator, a stale feed."""
    failing: list[str] = []
    degraded: list[str] = []
    if sup.halting:
        failing.append("wispd is shutting down")
    elif not sup.ready_sent:
        failing.append("starting")
    unhealthy = {ch.name: ch.state.value for ch in sup.children.values() if not ch.healthy()}
    failing += [f"{name} {state}" for name, state in unhealthy.items()]
    for ch in sup.children.values():
        if not ch.wanted and ch.state in (State.STOPPED, State.EXITED, State.FATAL):
            degraded.append(f"{ch.name} stopped by the operator")
        phase = str((ch.status or {}).get("phase") or "")
        if ch.state == State.RUNNING and phase.startswith("halted"):
            degraded.append(f"{ch.name} {phase}")
    if sup.desired.halted:
        degraded.append("trading halted (wispctl halt)")
    if sup.desired.halted_strategies:
        degraded.append("trading halted for " + ", ".join(sorted(sup.desired.halted_strategies)))
    degraded += [f"stale feed {feed}" for feed in stale]
    status = "failing" if failing else "degraded" if degraded else "ok"
    return {"status": status, "healthy": status == "ok", "problems": failing + degraded,
            "failing": failing, "degraded": degraded, "unhealthy_children": unhealthy, "stale_feeds": stale,
            "children": {ch.name: ch.state.value for ch in sup.children.values()},
            "trading_halted": sup.desired.halted, "halting": sup.halting}
