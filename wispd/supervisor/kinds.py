"""Child kinds: what the supervisor needs to know about each sort of child, and nothing more.

A kind is small and pluggable: an entry point (``module:function`` run in the child process), its default
restart policy, its default start timeout (readiness must arrive before it), and its place in the start and
stop order. The process itself decides when it is ready (an ingestor once connected with first snapshots, a
strategy once its parameters are valid and its snapshots arrived, an executor once reconciled) and says so
over the supervisor link; the supervisor only enforces the timeout.

``process`` is the generic kind: any Python entry point named in ``[processes.<name>]`` (sidecars,
custom feeds). The supervisor's own tests use it with test-only entry points kept in ``tests/``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildKind:
    name: str
    entry: str | None  # None: the entry comes from the child's config (generic processes)
    restart: str  # permanent | transient | temporary
    start_timeout: float
    start_rank: int  # lower starts first; a rank starts once every lower rank is settled
    stop_rank: int  # lower stops first; a rank stops once every lower rank has stopped
    readiness: str  # what "ready" means, shown in docs and status


INGESTOR = ChildKind(
    name="ingestor",
    entry="wispd.ingest.child:main",
    restart="permanent",
    start_timeout=60.0,
    start_rank=0,
    stop_rank=2,
    readiness="connected to the exchange and holding a first snapshot of every pre-declared pair",
)
EXECUTOR = ChildKind(
    name="executor",
    entry="wispd.execution.child:main",
    restart="permanent",
    start_timeout=60.0,
    start_rank=0,
    stop_rank=1,
    readiness="journal open and reconciled against the exchange (or paper book)",
)
STRATEGY = ChildKind(
    name="strategy",
    entry="wispd.strategy.child:main",
    restart="transient",
    start_timeout=30.0,
    start_rank=1,
    stop_rank=0,
    readiness="parameters valid and initial snapshots of the watched pairs received",
)
RECORDER = ChildKind(
    name="recorder",
    entry="wispd.data.recorder:main",
    restart="permanent",
    start_timeout=30.0,
    start_rank=1,
    stop_rank=0,
    readiness="its data directory writable, a segment open and the pairs subscribed",
)
PROCESS_INFRA = ChildKind(
    name="process",
    entry=None,
    restart="permanent",
    start_timeout=30.0,
    start_rank=0,
    stop_rank=2,
    readiness="the entry point called ctx.ready()",
)
PROCESS_APP = ChildKind(
    name="process",
    entry=None,
    restart="permanent",
    start_timeout=30.0,
    start_rank=1,
    stop_rank=0,
    readiness="the entry point called ctx.ready()",
)

KINDS: dict[str, ChildKind] = {k.name: k for k in (INGESTOR, EXECUTOR, STRATEGY, RECORDER)}
