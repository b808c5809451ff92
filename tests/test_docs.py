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


def test_strategy_api_reference_is_current():
    from wispd.strategy import reference as api

    text = (ROOT / "docs" / "strategy-guide.md").read_text()
    assert api.START in text and api.render_guide(text) == text, \
        "run: python -m wispd.strategy.reference --write"


def test_the_api_reference_names_every_public_sdk_name():
    from wispd import sdk
    from wispd.strategy import reference as api

    text = api.markdown()
    missing = [n for n in sdk.__all__ if n not in ("Decimal", "ParamError", "indicators", "spot", "perp")
               and f"`{n}" not in text and f"#### `{n}`" not in text]
    assert not missing, missing
    assert "|  |" not in text  # every member has a description (from its docstring)
