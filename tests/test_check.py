"""`wispctl check` / `wispd check`: the article's compile-time argument, answered. A strategy with a type
error fails before deploy (exit 78, file and line named); the shipped examples, the article's port and the
`wispctl init` template pass; every problem is listed at once."""

from __future__ import annotations

import subprocess

from tests.config.test_loader import write
from tests.helpers import BIN, ROOT

SIM = '[exchanges.sim]\ndriver = "sim"\npairs = ["BTC-USDT"]\n[executors.paper]\nexchanges = ["sim"]\n'

WRONG = '''from wispd.sdk import D, Param, Strategy, pair


class Wrong(Strategy):
    params = {"qty": Param(str, "0.1")}

    def run(self, ctx):
        p = pair("BTC", "USDT")
        for _ in ctx.every(5):
            ctx.emit(ctx.perp.signal("w").buy(p, "sim", 0.1))      # a float quantity
            ctx.spot.klines("sim", p, 60)                           # an interval is a string
            book = ctx.spot.oder_book("sim", p)                     # misspelt
            ctx.emit(ctx.spot.signal("w").sell(p, "sim", D(self.p.qty)).limit(1.5))
'''


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=180)


def test_a_strategy_with_type_errors_fails_the_check_with_each_line_named(tmp_path):
    (tmp_path / "wrong.py").write_text(WRONG)
    config = write(tmp_path, SIM + '[strategies.wrong]\nfile = "wrong.py"\n')
    for argv in (("wispctl", "check", "--config", str(config)), ("wispd", "check", "--config", str(config))):
        done = run(*argv)
        out = done.stdout + done.stderr
        assert done.returncode == 78, out
        errors = [line for line in out.splitlines() if "type error" in line]
        assert len(errors) == 4, out
        for line_no, what in ((10, '"float"'), (11, '"interval"'), (12, "oder_book"), (13, '"float"')):
            assert any(f"wrong.py:{line_no}:" in e and what in e and "strategies.wrong" in e for e in errors), \
                (line_no, errors)
        assert "4 problem(s)" in out


def test_the_examples_the_article_port_and_the_template_pass(tmp_path):
    shipped = run("wispctl", "check", "--config", str(ROOT / "config" / "wispd.toml"))
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "types: 3 strategy file(s) checked, 0 error(s)" in shipped.stdout
    port = write(tmp_path, '[exchanges.sim]\ndriver = "sim"\npairs = ["perp:BTC-USDT"]\n[executors.paper]\n'
                 f'exchanges = ["sim"]\n[strategies.article]\nfile = "{ROOT}/strategies/article_rsi.py"\n')
    done = run("wispctl", "check", "--config", str(port))
    assert done.returncode == 0 and "1 strategy file(s) checked, 0 error(s)" in done.stdout, done.stdout + done.stderr
    project = tmp_path / "proj"
    assert run("wispctl", "init", str(project)).returncode == 0
    done = run("wispctl", "check", "--config", str(project / "config" / "wispd.toml"))
    assert done.returncode == 0 and "0 error(s)" in done.stdout, done.stdout + done.stderr
