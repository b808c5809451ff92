"""``[processes.<name>]``: generic supervised Python processes (sidecars, custom feeds, helpers).

Each names an entry point ``package.module:function`` that receives a ``ChildContext``; it gets the same
supervision as the built-in planes (readiness, heartbeats, backoff, limits, ordered stop).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from wispd.config.model import LIMITS_SPEC, RESTART_SPEC, ChildSpec, DaemonConfig, child_spec
from wispd.config.schema import ConfigIssue, Field, MapOf, Table, entry_point, one_of
from wispd.config.secrets import inline_secret_issues
from wispd.supervisor.kinds import PROCESS_APP, PROCESS_INFRA

SPEC = MapOf(
    Table(
        {
            "entry": Field(str, 'an entry point "package.module:function"', required=True, check=entry_point),
            "phase": Field(str, '"infra" (starts with ingestors/executors) or "app" (starts with strategies)',
                           default="app", check=one_of("infra", "app")),
            "autostart": Field(bool, "true or false", default=True),
            "args": Field(dict, "a table of arguments passed to the entry point", default={}),
            "restart": RESTART_SPEC,
            "limits": LIMITS_SPEC,
        }
    )
)


def _module_findable(module: str, python_path: tuple[str, ...]) -> bool:
    top = module.split(".")[0]
    saved = list(sys.path)
    try:
        sys.path[:0] = list(python_path)
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
    finally:
        sys.path[:] = saved


def build(raw: dict[str, Any], daemon: DaemonConfig, issues: list[ConfigIssue],
          data: dict[str, Any]) -> list[ChildSpec]:
    specs = []
    file = str(daemon.config_path)
    for name, item in raw.items():
        issues += inline_secret_issues(file, f"processes.{name}.args", item["args"] or {})
        if not item.get("entry"):
            continue
        module = item["entry"].partition(":")[0]
        if not _module_findable(module, daemon.python_path):
            issues.append(ConfigIssue(file, f"processes.{name}.entry", item["entry"],
                                      "an importable module (not found on sys.path or daemon.python_path)"))
        kind = PROCESS_INFRA if item["phase"] == "infra" else PROCESS_APP
        specs.append(child_spec(name, kind, item["args"] or {}, item, daemon, entry=item["entry"]))
    return specs
