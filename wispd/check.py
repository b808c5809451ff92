"""``wispd check`` / ``wispctl check``: everything that can be known before deploy, reported at once.

1. The configuration (every key, type, range, path, endpoint; exit 78 on any problem).
2. Every strategy, imported in its own throwaway process: the file loads, the class is a Strategy, every
   parameter is valid (all problems at once, not the first one at start).
3. A static type check of every strategy file against the SDK's annotations (``strategy/typecheck.py``):
   a float quantity, a wrong argument, a misspelt ``ctx`` method fail here, before deploy. Skipped, with a
   warning that says how to install it, when the checker is not installed.
4. The keys of every secrets file (their names only; a value is never printed).
Warnings (valid but risky settings, such as /metrics beyond loopback without auth) are printed too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wispd.config import ConfigError, load_config
from wispd.config.secrets import read_secret_keys

SECRETS_KEYS = frozenset({"API_KEY", "API_SECRET"})
EX_OK, EX_CONFIG = 0, 78


def check(path: str | None, out: Any) -> int:
    """Print the findings to ``out`` (a callable taking one line); returns the exit code."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            out(f"config error: {issue}")
        out(f"configuration invalid ({len(exc.issues)} problem(s)); nothing was started")
        return EX_CONFIG
    file = str(config.daemon.config_path)
    problems: list[str] = []
    warnings = list(config.warnings)
    sources: dict[str, list[str]] = {}  # strategy file -> the strategies that run it
    for spec in config.children:
        if spec.kind == "strategy":
            from wispd.strategy.check import check_strategy

            result = check_strategy(spec.args, spec.name, list(config.daemon.python_path))
            problems += [f"{file}: strategies.{spec.name}: {e}" for e in result.get("errors") or []]
            if result.get("file"):
                sources.setdefault(str(result["file"]), []).append(spec.name)
        secrets_file = (spec.args.get("credentials") or {}).get("secrets_file") if spec.kind == "executor" else None
        if secrets_file:
            account = spec.name.split(".", 1)[1]
            try:
                keys = read_secret_keys(Path(secrets_file))
            except OSError as exc:
                problems.append(f"{file}: executors.{account}.secrets_file: cannot read {secrets_file}: {exc.strerror}")
                continue
            problems += [f"{file}: executors.{account}.secrets_file: {secrets_file} has an unknown key {k!r} "
                         f"(expected {', '.join(sorted(SECRETS_KEYS))})" for k in sorted(keys - SECRETS_KEYS)]
            problems += [f"{file}: executors.{account}.secrets_file: {secrets_file} lacks {k}"
                         for k in sorted(SECRETS_KEYS - keys)]
    if sources:
        from wispd.strategy.typecheck import typecheck

        try:
            issues = typecheck(sorted(sources), list(config.daemon.python_path))
            for issue in issues:
                names = ", ".join(f"strategies.{n}" for n in sources.get(issue.file, [])) or "strategies"
                problems.append(f"{names}: type error: {issue}")
            checked = f"types: {len(sources)} strategy file(s) checked, {len(issues)} error(s)"
        except FileNotFoundError as exc:
            warnings.append(f"the static type check was skipped: {exc}")
            checked = "types: not checked"
        except RuntimeError as exc:
            problems.append(f"the static type check could not run: {exc}")
            checked = "types: not checked"
    else:
        checked = "types: no strategy files"
    for warning in warnings:
        out(f"warning: {warning}")
    for problem in problems:
        out(f"error: {problem}")
    if problems:
        out(f"{file}: {len(problems)} problem(s)")
        return EX_CONFIG
    out(f"{file}: OK, {len(config.children)} children; {checked}")
    for spec in config.children:
        out(f"  {spec.name:<20} {spec.kind:<9} restart={spec.restart.policy} autostart={spec.autostart}")
    return EX_OK
