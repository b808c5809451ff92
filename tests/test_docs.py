"""Generated reference docs stay in step with the code they describe."""

from __future__ import annotations

from tests.helpers import ROOT
from wispd.config import reference
from wispd.metrics import catalogue


def test_configuration_reference_is_current():
    assert (ROOT / "docs" / "configuration.md").read_text() == reference.markdown(), \
        "run: python -m wispd.config.reference > docs/configuration.md"


def test_metrics_reference_is_current():
    assert (ROOT / "docs" / "metrics.md").read_text() == catalogue.markdown(), \
        "run: python -m wispd.metrics.catalogue > docs/metrics.md"
