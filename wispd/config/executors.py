"""``[executors.<name>]``: one executor child per account (named ``executor.<name>``).

An executor receives the signals of the strategies whose ``account`` names it, checks risk, journals the
intent, then orders. ``mode = "paper"`` fills against the market-data plane's books (any exchange, the sim
included); ``mode = "live"`` trades one real exchange account through ccxt. Credentials are named, never
written here: ``*_env`` variable names or a ``secrets_file`` of mode 0600 (``API_KEY=``/``API_SECRET=``);
the executor process reads them itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from wispd.config.model import LIMITS_SPEC, RESTART_SPEC, ChildSpec, DaemonConfig, child_spec
from wispd.config.schema import ConfigIssue, Field, MapOf, Table, between, endpoint, one_of
from wispd.config.secrets import check_env, check_file, env_value, read_secrets_file
from wispd.protocol import to_decimal
from wispd.supervisor.kinds import EXECUTOR


def _decimal(value: Any) -> str | None:
    d = to_decimal(value) if isinstance(value, str) else None
    return None if d is not None and d >= 0 else 'a decimal string of 0 or more, e.g. "10000"'


def _decimal_table(value: dict[str, Any]) -> str | None:
    bad = [k for k, v in value.items() if _decimal(v)]
    return f"a table of decimal strings (bad: {', '.join(bad)})" if bad else None


RISK_SPEC = Table({
    "max_order_notional": Field(str, "quote units per order", default="100000", check=_decimal),
    "max_position_notional": Field(str, "quote units per symbol and strategy", default="250000", check=_decimal),
    "max_open_orders": Field(int, "a count from 0 to 100000", default=50, check=between(0, 100000, "a count")),
    "strategy_budget": Field(str, "quote units each strategy may have at risk", default="500000", check=_decimal),
    "budgets": Field(dict, "per-strategy budgets, {name = \"amount\"}", default={}, check=_decimal_table),
    "price_collar_pct": Field(float, "percent from mid a limit price may be (above 0, up to 100)", default=5.0,
                              check=between(0, 100, "percent", low_open=True)),
    "max_leverage": Field(float, "the highest leverage a perp order may ask for, 1 to 125", default=10.0,
                          check=between(1, 125, "a leverage")),
})

PAPER_SPEC = Table({
    "balances": Field(dict, 'starting balances, {USDT = "100000"}', default={"USDT": "100000"},
                      check=_decimal_table),
    "latency_ms": Field(float, "milliseconds from 0 to 60000", default=20.0, check=between(0, 60000, "milliseconds")),
    "maker_fee": Field(str, "a fee rate, e.g. \"0.0002\"", check=_decimal),
    "taker_fee": Field(str, "a fee rate, e.g. \"0.0005\"", check=_decimal),
})

KILL_SPEC = Table({
    "account_max_drawdown": Field(str, "quote units the account's equity may fall from its peak before every "
                                  "strategy on it is halted", check=_decimal),
    "account_daily_loss": Field(str, "quote units the account may lose in a UTC day before it is halted",
                                check=_decimal),
    "strategy_max_drawdown": Field(str, "the same per strategy (only that strategy is halted)", check=_decimal),
    "strategy_daily_loss": Field(str, "the same per strategy and UTC day", check=_decimal),
    "flatten": Field(bool, "also close the positions (reduce-only market orders) when a switch trips",
                     default=False),
}, doc="kill switches: drawdown and daily loss limits that halt (and optionally flatten)")

LIVE_SPEC = Table({
    "unknown_orders": Field(str, "what to do with open exchange orders the journal does not know",
                            default="report", check=one_of("report", "cancel")),
    "poll_interval_s": Field(float, "seconds between order polls while the private streams are up (faster "
                             "while they are down), 0.1 to 3600", default=10.0, check=between(0.1, 3600)),
    "account_poll_s": Field(float, "seconds between balance/position reads, 1 to 86400", default=30.0,
                            check=between(1, 86400)),
    "request_timeout_s": Field(float, "seconds before a REST request counts as an unknown outcome",
                               default=10.0, check=between(0.5, 600)),
    "triggers": Field(str, "who holds stop and take-profit orders: \"venue\" (native trigger orders where the "
                      "exchange has them: they fire while wispd is down) or \"executor\" (held and fired by the "
                      "executor; see docs/execution.md)", default="venue", check=one_of("venue", "executor")),
    "rate_limit_ms": Field(float, "override ccxt's rate limit: milliseconds per request unit (one budget "
                           "per account), 1 to 60000", check=between(1, 60000, "milliseconds")),
}, doc="live trading through ccxt")

SPEC = MapOf(Table({
    "mode": Field(str, "the execution mode", default="paper", check=one_of("paper", "live")),
    "exchanges": Field(list, "exchanges (from [exchanges]) this account trades on", required=True, item_type=str),
    "api_key_env": Field(str, "the NAME of an environment variable holding the API key"),
    "secret_env": Field(str, "the NAME of an environment variable holding the API secret"),
    "secrets_file": Field(str, "a KEY=VALUE file of mode 0600"),
    "signals_endpoint": Field(str, "a ZeroMQ endpoint", check=endpoint),
    "reports_endpoint": Field(str, "a ZeroMQ endpoint", check=endpoint),
    "paper": PAPER_SPEC,
    "live": LIVE_SPEC,
    "risk": RISK_SPEC,
    "kill_switch": KILL_SPEC,
    "restart": RESTART_SPEC,
    "limits": LIMITS_SPEC,
}))


def endpoints(name: str, item: dict[str, Any], daemon: DaemonConfig) -> dict[str, str]:
    return {
        "signals": item.get("signals_endpoint") or f"ipc://{daemon.run_dir}/exec-{name}.pull",
        "reports": item.get("reports_endpoint") or f"ipc://{daemon.run_dir}/exec-{name}.pub",
    }


def secrets_path(value: str, daemon: DaemonConfig) -> Path:
    return Path(value) if Path(value).is_absolute() else daemon.config_path.parent / value


def _live_issues(file: str, path: str, item: dict[str, Any], data: dict[str, Any],
                 issues: list[ConfigIssue]) -> dict[str, Any] | None:
    """A live account is one exchange with credentials; returns what its executor needs to reach it."""
    from wispd.config.exchanges import MARKETS
    from wispd.execution.live.drivers import LIVE_DRIVERS

    names = item["exchanges"] or []
    if len(names) != 1:
        issues.append(ConfigIssue(file, f"{path}.exchanges", names, "exactly one exchange for a live account"))
        return None
    ex = data["exchanges"].get(names[0])
    if ex is None:
        return None
    if ex.get("driver") not in LIVE_DRIVERS:
        issues.append(ConfigIssue(file, f"{path}.exchanges[0]", names[0], "an exchange whose driver trades live: "
                                  f"{', '.join(LIVE_DRIVERS)} (it is {ex.get('driver')})"))
        return None
    has_env = bool(item["api_key_env"]) and bool(item["secret_env"])
    if not has_env and not item["secrets_file"]:
        issues.append(ConfigIssue(file, f"{path}.api_key_env", None, "credentials for a live account: api_key_env "
                                  "and secret_env, or a secrets_file with API_KEY= and API_SECRET=", missing=True))
    return {"driver": ex["driver"], "api_base": ex.get("api_base"), "keepalive_s": ex.get("keepalive_s", 15.0),
            "markets": list(MARKETS[ex["driver"]])}


def _key_identity(item: dict[str, Any], daemon: DaemonConfig) -> str:
    """Which exchange account a live executor trades, by its API key (hashed at once; the key is an
    identifier, and the secret is never read here): two executors naming different variables or files
    that hold the same key are the same account."""
    key = ""
    if item["api_key_env"]:
        key = env_value(item["api_key_env"])
    elif item["secrets_file"]:
        try:
            key = read_secrets_file(secrets_path(item["secrets_file"], daemon)).get("API_KEY", "")
        except OSError:
            key = ""
    if not key:  # unreadable: fall back to the names, so at least the same names collide
        key = f"{item['api_key_env']}|{item['secrets_file']}"
    return hashlib.sha256(key.encode()).hexdigest()


def build(raw: dict[str, Any], daemon: DaemonConfig, issues: list[ConfigIssue],
          data: dict[str, Any]) -> list[ChildSpec]:
    from wispd.config import exchanges as exchanges_section

    file = str(daemon.config_path)
    specs = []
    strategies = data.get("strategies") or {}
    live_accounts: dict[tuple[Any, ...], str] = {}
    for name, item in raw.items():
        path = f"executors.{name}"
        for i, ex in enumerate(item["exchanges"] or []):
            if ex not in data["exchanges"]:
                issues.append(ConfigIssue(file, f"{path}.exchanges[{i}]", ex, "an exchange defined in [exchanges] "
                                          f"(have: {', '.join(sorted(data['exchanges'])) or 'none'})"))
        for key in ("api_key_env", "secret_env"):
            if item[key]:
                issues += check_env(file, f"{path}.{key}", item[key])
        if item["secrets_file"]:
            issues += check_file(file, f"{path}.secrets_file", item["secrets_file"], daemon.config_path.parent)
        venue = _live_issues(file, path, item, data, issues) if item["mode"] == "live" else None
        if venue is not None:
            # One exchange account, one executor: so one rate-limit budget and one journal per account.
            account = (tuple(item["exchanges"]), _key_identity(item, daemon))
            if account in live_accounts:
                issues.append(ConfigIssue(file, f"{path}.exchanges", item["exchanges"], "an account no other "
                                          f"executor trades (executors.{live_accounts[account]} has the same "
                                          "exchange and credentials)"))
            live_accounts.setdefault(account, name)
        eps = endpoints(name, item, daemon)
        users = strategy_set(name, raw, strategies)
        shares = sum(st["allocation_share"] for s, st in strategies.items() if s in users and st["allocation_share"])
        if shares > 1:
            issues.append(ConfigIssue(file, f"{path}", name, "strategies whose allocation_share adds up to at most "
                                      f"1 (they add up to {shares:g})"))
        args = {
            "account": name, "mode": item["mode"], "signals_endpoint": eps["signals"],
            "reports_endpoint": eps["reports"], "strategies": users,
            "exchanges": {ex: exchanges_section.endpoints(ex, data["exchanges"][ex], daemon)
                          for ex in item["exchanges"] or [] if ex in data["exchanges"]},
            "paper": item["paper"], "risk": item["risk"], "live": item["live"], "venue": venue,
            "kill_switch": item["kill_switch"],
            "credentials": {"api_key_env": item["api_key_env"], "secret_env": item["secret_env"],
                            "secrets_file": str(secrets_path(item["secrets_file"], daemon))
                            if item["secrets_file"] else None},
        }
        specs.append(child_spec(f"executor.{name}", EXECUTOR, args, item, daemon, reloadable=("strategies",)))
    return specs


def strategy_set(account: str, executors: dict[str, Any], strategies: dict[str, Any]) -> dict[str, Any]:
    """The strategies that trade on ``account``, with their allocations: what the executor learns at start
    and, after a reload, over its link (a change of this set never restarts it)."""
    only = next(iter(executors)) if len(executors) == 1 else None
    out = {}
    for s, st in sorted(strategies.items()):
        if (st.get("account") or only) == account:
            out[s] = {"fixed": st.get("allocation"), "share": st.get("allocation_share"),
                      "on_remove": st.get("on_remove") or "cancel"}
    return out
