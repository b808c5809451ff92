"""``[strategies.<name>]``: one strategy process each (the child is named after the strategy)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from wispd.config.model import LIMITS_SPEC, RESTART_SPEC, ChildSpec, DaemonConfig, child_spec
from wispd.config.schema import ConfigIssue, Field, MapOf, Table, between, one_of
from wispd.config.secrets import inline_secret_issues
from wispd.supervisor.kinds import STRATEGY

_PAIR = re.compile(r"^([a-z][a-z0-9_-]*):(?:(spot|perp):)?([A-Z0-9]{1,20}-[A-Z0-9]{1,20})$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

def _decimal_table(value: dict[str, Any]) -> str | None:
    from wispd.protocol import to_decimal

    bad = [k for k, v in value.items() if not isinstance(v, str) or (d := to_decimal(v)) is None or d < 0]
    return f"a table of decimal strings of 0 or more (bad: {', '.join(bad)})" if bad else None


SPEC = MapOf(
    Table(
        {
            "module": Field(str, "an importable module (package.module)",
                            check=lambda v: None if _DOTTED.match(v) else "a dotted module name"),
            "file": Field(str, "a Python file (relative to this config file)"),
            "class": Field(str, "the Strategy class name",
                           check=lambda v: None if v.isidentifier() else "a Python class name"),
            "account": Field(str, "the executor that receives this strategy's signals"),
            "pairs": Field(list, 'pairs watched before on_start, e.g. ["sim:BTC-USDT", "sim:perp:BTC-USDC"]',
                           default=[], item_type=str),
            "params": Field(dict, "a table of the strategy's parameters", default={}),
            "allocation": Field(dict, 'what the strategy is given on its account, per asset, e.g. {USDT = "10000"} '
                                "(default: an equal share of what the account's other strategies leave)",
                                check=_decimal_table),
            "allocation_share": Field(float, "instead of a fixed allocation: a share of the account's capital, "
                                      "above 0 and up to 1", check=between(0, 1, "a share", low_open=True)),
            "on_remove": Field(str, "when a reload removes this strategy: cancel its working orders, or keep "
                               "them (its positions are reported as orphaned either way)", default="cancel",
                               check=one_of("cancel", "keep")),
            "autostart": Field(bool, "true or false", default=True),
            "restart": RESTART_SPEC,
            "limits": LIMITS_SPEC,
        }
    )
)


def build(raw: dict[str, Any], daemon: DaemonConfig, issues: list[ConfigIssue],
          data: dict[str, Any]) -> list[ChildSpec]:
    from wispd.config import exchanges as exchanges_section
    from wispd.config import executors as executors_section

    file = str(daemon.config_path)
    exchanges = {name: exchanges_section.endpoints(name, item, daemon) for name, item in data["exchanges"].items()}
    accounts = data["executors"]
    specs = []
    for name, item in raw.items():
        path = f"strategies.{name}"
        issues += inline_secret_issues(file, f"{path}.params", item["params"] or {})
        source: dict[str, Any] = {}
        if bool(item["module"]) == bool(item["file"]):
            issues.append(ConfigIssue(file, path, "", 'exactly one of module = "pkg.mod" or file = "x.py"',
                                      missing=True))
        elif item["file"]:
            target = Path(item["file"]) if Path(item["file"]).is_absolute() else daemon.config_path.parent / item["file"]
            if not target.is_file() or not os.access(target, os.R_OK):
                issues.append(ConfigIssue(file, f"{path}.file", item["file"], f"a readable Python file ({target})"))
            source["file"] = str(target.resolve())
        else:
            source["module"] = item["module"]
        pairs = []
        for i, text in enumerate(item["pairs"] or []):
            match = _PAIR.match(text)
            if not match:
                issues.append(ConfigIssue(file, f"{path}.pairs[{i}]", text, '"exchange:BASE-QUOTE" or '
                                          '"exchange:perp:BASE-QUOTE"'))
            elif match.group(1) not in exchanges:
                issues.append(ConfigIssue(file, f"{path}.pairs[{i}]", text,
                                          f"a configured exchange (have: {', '.join(sorted(exchanges)) or 'none'})"))
            else:
                market = match.group(2) or data["exchanges"][match.group(1)]["market"]
                pairs.append([match.group(1), market, match.group(3)])
        account = item["account"]
        if account is None and len(accounts) == 1:
            account = next(iter(accounts))
        if item["allocation"] is not None and item["allocation_share"] is not None:
            issues.append(ConfigIssue(file, f"{path}.allocation_share", item["allocation_share"],
                                      "either allocation or allocation_share, not both"))
        if account is not None and account not in accounts:
            issues.append(ConfigIssue(file, f"{path}.account", account,
                                      f"a configured executor (have: {', '.join(sorted(accounts)) or 'none'})"))
            account = None
        eps = executors_section.endpoints(account, accounts[account], daemon) if account else {}
        state_wait = (item["limits"].get("start_timeout") or STRATEGY.start_timeout) / 3
        args = {**source, "class": item["class"], "params": item["params"] or {}, "pairs": pairs,
                "state_wait": state_wait,
                "exchanges": exchanges, "account": account, "signals_endpoint": eps.get("signals"),
                "venues": {n: exchanges_section.venue(x) for n, x in data["exchanges"].items() if x.get("driver")},
                "reports_endpoint": eps.get("reports")}
        specs.append(child_spec(name, STRATEGY, args, item, daemon))
    return specs
