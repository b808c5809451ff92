"""The static half of ``wispd check``: type-check strategy files against the SDK's annotations.

Why: the article's case for Go is that a wrong argument fails at compile time, not at 3 am. A strategy's
``run(self, ctx)`` needs no annotations for this: the checker (basedpyright, pinned in the ``[check]``
extra) takes an unannotated override's parameter types from ``Strategy.run(self, ctx: StrategyContext)``,
so ``ctx.perp.signal("x").buy(pair, "sim", 0.1)`` (a float quantity), ``ctx.spot.klines(ex, p, 5)`` or a
misspelt ``ctx.spot.oder_book`` are errors before deploy. The rules are pyright's "standard" set: errors
that are bugs, not style.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wispd

CHECKER = "basedpyright"
TIMEOUT = 300.0


@dataclass(frozen=True)
class TypeIssue:
    file: str
    line: int
    column: int
    message: str
    rule: str

    def __str__(self) -> str:
        first = self.message.splitlines()[0] if self.message else ""
        return f"{self.file}:{self.line}:{self.column}: {first}" + (f" ({self.rule})" if self.rule else "")


def checker() -> str | None:
    """The checker's executable (next to this interpreter first), or None when it is not installed."""
    beside = Path(sys.executable).with_name(CHECKER)
    return str(beside) if beside.exists() else shutil.which(CHECKER)


def typecheck(files: list[str], python_path: list[str]) -> list[TypeIssue]:
    """Type errors in ``files`` (the config's ``python_path`` and the wispd package importable).

    Raises ``FileNotFoundError`` when the checker is not installed and ``RuntimeError`` when it fails."""
    exe = checker()
    if exe is None:
        raise FileNotFoundError(f"{CHECKER} is not installed (pip install 'wispd[check]')")
    if not files:
        return []
    package_root = str(Path(wispd.__file__).resolve().parent.parent)  # also for an editable install
    with tempfile.TemporaryDirectory(prefix="wispd-check-") as tmp:
        project = Path(tmp) / "pyrightconfig.json"
        project.write_text(json.dumps({
            "typeCheckingMode": "standard",
            "extraPaths": [*python_path, package_root],
            "reportMissingModuleSource": "none",
        }))
        try:
            done = subprocess.run([exe, "--outputjson", "--project", str(project), "--pythonpath", sys.executable,
                                   *files], capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the type check did not finish within {TIMEOUT:.0f} s") from None
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"the type checker failed: {tail}") from None
    issues = []
    for d in report.get("generalDiagnostics", []):
        if d.get("severity") != "error":
            continue
        start = (d.get("range") or {}).get("start") or {}
        issues.append(TypeIssue(d.get("file", ""), int(start.get("line", 0)) + 1, int(start.get("character", 0)) + 1,
                                d.get("message", ""), d.get("rule", "")))
    return issues
