"""The Grafana dashboard and Prometheus files only use metrics from the catalogue, and parse."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.helpers import ROOT
from wispd.metrics.catalogue import CATALOGUE

SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b(wispd_[a-z_]+)", expr)}


def known(name: str) -> bool:
    return name in CATALOGUE or any(name.endswith(s) and name[: -len(s)] in CATALOGUE for s in SUFFIXES)


def test_dashboard_is_current_and_uses_known_metrics():
    from deploy.grafana.generate import dashboard

    text = (ROOT / "deploy" / "grafana" / "wispd.json").read_text()
    assert json.loads(text) == dashboard(), "run: python deploy/grafana/generate.py"
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used and all(known(n) for n in used), [n for n in used if not known(n)]


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"), reason="promtool not installed")
def test_prometheus_config_and_alert_rules_check():
    rules = ROOT / "deploy" / "prometheus" / "wispd-alerts.yml"
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(["promtool", "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    used = metric_names(rules.read_text())
    assert all(known(n) for n in used)
