"""``wispctl reload`` / SIGHUP: apply a new configuration with the least disturbance.

The new file is validated whole first (an invalid one changes nothing). Then: children that disappeared
are stopped and removed, new ones started (unless an operator stopped them before), changed ones
(different fingerprint) restarted, a FATAL one whose config changed started again, unchanged ones left
alone. An executor is never restarted because the set of strategies on its account changed: it is told
over its link (new strategies are funded; a removed one's working orders are cancelled, or kept with
``on_remove = "keep"``, and its positions are reported as orphaned). Daemon settings that only take effect
at start (directories, endpoints) are reported, not half-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wispd import protocol
from wispd.config import ConfigError, load_config
from wispd.supervisor.child import Child
from wispd.supervisor.states import State

if TYPE_CHECKING:
    from wispd.supervisor.supervisor import Supervisor

Respond = Callable[[bool, dict[str, Any], str, str], None]


def apply_reload(sup: Supervisor, respond: Respond) -> None:
    try:
        new = load_config(sup.daemon.config_path)
    except ConfigError as exc:
        sup.log.error("reload_rejected", errors=[str(i) for i in exc.issues])
        respond(False, {"errors": [str(i) for i in exc.issues]}, protocol.ERR_CONFIG,
                "configuration invalid; nothing changed")
        return
    sup.notifier.reloading()
    old_names, new_specs = set(sup.children), {s.name: s for s in new.children}
    added = [n for n in new_specs if n not in old_names]
    removed = [n for n in old_names if n not in new_specs]
    changed = [n for n in new_specs if n in old_names
               and sup.children[n].spec.fingerprint() != new_specs[n].fingerprint()]
    daemon_changed = [k for k in ("run_dir", "state_dir", "log_dir", "control_endpoint", "link_endpoint")
                      if getattr(new.daemon, k) != getattr(sup.daemon, k)]
    sup.config = new
    retold = []
    for name, spec in new_specs.items():  # executors whose strategy set changed: told, not restarted
        child = sup.children.get(name)
        if child is None or name in changed or spec.kind != "executor":
            continue
        old_set, new_set = child.spec.args.get("strategies") or {}, spec.args.get("strategies") or {}
        if old_set != new_set:
            removed = {s: (old_set[s] or {}).get("on_remove", "cancel") for s in old_set if s not in new_set}
            child.replace_spec(spec)
            if child.state.alive and child.linked:
                sup._send_link(child, protocol.LINK_COMMAND, cmd="strategies", strategies=new_set, removed=removed)
            retold.append(name)
    for name in changed:
        sup.children[name].replace_spec(new_specs[name])
    for name in added:
        spec = new_specs[name]
        sup.children[name] = Child(spec, spec.autostart and name not in sup.desired.stopped)
    summary = {"added": added, "removed": removed, "changed": changed,
               "unchanged": len(new_specs) - len(added) - len(changed), "strategy_sets_changed": retold,
               "needs_wispd_restart": daemon_changed}
    sup.log.info("reload", **summary)

    def done(results: dict[str, tuple[bool, str]]) -> None:
        failed = {n: m for n, (ok, m) in results.items() if not ok}
        sup.notifier.ready(sup._status_line())
        if failed:
            respond(False, {**summary, "failed": failed}, protocol.ERR_FAILED, "some children failed")
        else:
            respond(True, summary, "", "")

    ops: list[tuple[Child, str]] = [(sup.children[n], "remove") for n in removed]
    ops += [(sup.children[n], "restart") for n in changed if sup.children[n].state.alive]
    ops += [(sup.children[n], "start") for n in changed
            if sup.children[n].state == State.FATAL and sup.children[n].wanted]  # its config was fixed
    ops += [(sup.children[n], "start") for n in added if sup.children[n].wanted]
    results: dict[str, tuple[bool, str]] = {}
    pending = {"n": len(ops)}
    if not ops:
        done(results)
        return

    def part(res: dict[str, tuple[bool, str]]) -> None:
        results.update(res)
        pending["n"] -= 1
        if pending["n"] == 0:
            done(results)

    for child, verb in ops:
        sup.submit([child], verb, part, persist=False)

