"""Every config error names the file, the key path, the bad value and what was expected."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, ROOT
from wispd.config import ConfigError, load_config

GOOD_PROC = '[processes.p1]\nentry = "tests.kinds:well_behaved"\n'


def write(tmp: Path, text: str) -> Path:
    path = tmp / "wispd.toml"
    path.write_text(f'[daemon]\nrun_dir = "{tmp}/run"\nstate_dir = "{tmp}/state"\npython_path = ["{ROOT}"]\n'
                    + text)
    return path


def issues(tmp: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp, text))
    return [str(i) for i in err.value.issues]


def test_good_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, GOOD_PROC))
    assert [c.name for c in cfg.children] == ["p1"]
    assert cfg.daemon.control_endpoint == f"ipc://{tmp_path}/run/control.sock"


def test_unknown_key(tmp_path):
    (msg,) = issues(tmp_path, GOOD_PROC + "bogus = 1\n")
    assert msg.startswith(f"{tmp_path}/wispd.toml: processes.p1.bogus = 1: expected no such key")
    assert "known: args, autostart, entry" in msg


def test_unknown_section(tmp_path):
    (msg,) = issues(tmp_path, "[strategy]\nx = 1\n")
    assert "strategy = " in msg and "unknown key" in msg


def test_wrong_type(tmp_path):
    (msg,) = issues(tmp_path, GOOD_PROC + "[processes.p1.restart]\nmax_restarts = \"five\"\n")
    assert msg.endswith('processes.p1.restart.max_restarts = "five": expected an integer from 1 to 1000')


def test_bad_choice_and_range(tmp_path):
    msgs = issues(tmp_path, GOOD_PROC + '[processes.p1.restart]\npolicy = "sometimes"\njitter = 1.5\n')
    assert any('policy = "sometimes": expected one of "permanent", "transient", "temporary"' in m for m in msgs)
    assert any("jitter = 1.5: expected a fraction between 0 and 1" in m for m in msgs)


def test_missing_required(tmp_path):
    (msg,) = issues(tmp_path, "[processes.p1]\nphase = \"app\"\n")
    assert msg.endswith("processes.p1.entry: missing required key (expected an entry point "
                        '"package.module:function")')


def test_bad_endpoint(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\ncontrol_endpoint = "tcp://127.0.0.1:5555"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert 'daemon.control_endpoint = "tcp://127.0.0.1:5555": expected an ipc:// endpoint' in str(err.value)
    path.write_text('[daemon]\ncontrol_endpoint = "ipc://relative.sock"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "absolute path" in str(err.value)


def test_duplicate_child_names(tmp_path):
    text = GOOD_PROC + '[processes.p2]\nentry = "tests.kinds:well_behaved"\n'
    cfg = load_config(write(tmp_path, text))
    assert len(cfg.children) == 2
    # TOML itself refuses a repeated table; that is reported as a syntax error naming the line
    msgs = issues(tmp_path, GOOD_PROC + GOOD_PROC)
    assert "(syntax)" in msgs[0] and "line" in msgs[0]


def test_unreadable_paths(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        text = '[processes.p1]\nentry = "tests.kinds:well_behaved"\n'
        path = tmp_path / "w.toml"
        path.write_text(f'[daemon]\nstate_dir = "{tmp_path}/file"\npython_path = ["{tmp_path}/nope"]\n' + text)
        (tmp_path / "file").write_text("not a dir")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        text_err = str(err.value)
        assert f'daemon.state_dir = "{tmp_path}/file": expected a directory' in text_err
        assert f'daemon.python_path[0] = "{tmp_path}/nope": expected a readable directory' in text_err
    finally:
        locked.chmod(0o700)


def test_unimportable_entry(tmp_path):
    (msg,) = issues(tmp_path, '[processes.p1]\nentry = "no_such_pkg.mod:main"\n')
    assert 'processes.p1.entry = "no_such_pkg.mod:main": expected an importable module' in msg


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "absent.toml")
    assert "not found" in str(err.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[daemon\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value).startswith(f"{bad}: (syntax)")


def test_all_issues_reported_at_once(tmp_path):
    msgs = issues(tmp_path, '[processes.p1]\nentry = "x"\nphase = "later"\n[processes.Bad]\n')
    assert len(msgs) == 3


def test_wispd_run_exits_78_before_starting_anything(tmp_path):
    path = write(tmp_path, GOOD_PROC + "[processes.p1.limits]\nmemory_mb = -5\n")
    result = subprocess.run([str(BIN / "wispd"), "run", "--config", str(path)], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 78
    assert f"{path}: processes.p1.limits.memory_mb = -5: expected megabytes from 0 to 1048576" in result.stderr
    assert not (tmp_path / "run").exists()  # nothing was created, let alone started


def test_shipped_config_is_valid():
    cfg = load_config(ROOT / "config" / "wispd.toml")
    assert cfg.daemon.log_level == "info"


PLANES = '[exchanges.sim]\ndriver = "sim"\n[executors.live1]\nexchanges = ["sim"]\n'


def test_duplicate_names_across_sections(tmp_path):
    msgs = issues(tmp_path, PLANES + '[strategies.twin]\nmodule = "tests.sample_strategies"\n' + GOOD_PROC.replace(
        "p1", "twin"))
    assert any("a unique child name (already used by a strategy)" in m for m in msgs)


def test_secrets_from_env_names_only(tmp_path, monkeypatch):
    monkeypatch.delenv("WISPD_TEST_KEY", raising=False)
    (msg,) = issues(tmp_path, PLANES + 'api_key_env = "WISPD_TEST_KEY"\n')
    assert 'executors.live1.api_key_env = "WISPD_TEST_KEY": expected an environment variable that is set' in msg
    monkeypatch.setenv("WISPD_TEST_KEY", "not-in-any-message")
    cfg = load_config(write(tmp_path, PLANES + 'api_key_env = "WISPD_TEST_KEY"\n'))
    assert "not-in-any-message" not in str(cfg.child("executor.live1").args)  # names travel, never values
    (msg,) = issues(tmp_path, PLANES + 'api_key_env = "lower-case"\n')
    assert "an environment variable name" in msg


def test_secrets_file_must_be_0600(tmp_path):
    secrets = tmp_path / "binance.secrets"
    secrets.write_text("API_KEY=abc\nSECRET=def\n")
    secrets.chmod(0o644)
    (msg,) = issues(tmp_path, PLANES + f'secrets_file = "{secrets}"\n')
    assert "expected a file of mode 0600 or stricter (it is 0644" in msg
    secrets.chmod(0o600)
    load_config(write(tmp_path, PLANES + 'secrets_file = "binance.secrets"\n'))  # relative to the config
    from wispd.config.secrets import read_secrets_file

    assert read_secrets_file(secrets) == {"API_KEY": "abc", "SECRET": "def"}
    (msg,) = issues(tmp_path, PLANES + 'secrets_file = "missing.secrets"\n')
    assert "a readable secrets file" in msg


def test_inline_secrets_are_refused(tmp_path):
    (msg,) = issues(tmp_path, PLANES + '[strategies.s]\nmodule = "tests.sample_strategies"\n'
                                       'params = { api_key = "sk-123" }\n')
    assert msg.endswith('strategies.s.params.api_key = "***": expected no secret inline: name an environment '
                        "variable (<key>_env) or use a secrets_file of mode 0600")
    assert "sk-123" not in msg
    msgs = issues(tmp_path, PLANES + "api_key = \"x\"\n")
    assert any("executors.live1.api_key" in m and "unknown key" in m for m in msgs)


def test_plane_cross_references(tmp_path):
    msgs = issues(tmp_path, '[exchanges.sim]\ndriver = "sim"\npairs = ["btc"]\n[executors.a]\nexchanges = ["mars"]\n'
                            '[strategies.s]\nfile = "nope.py"\naccount = "b"\npairs = ["venus:BTC-USDT"]\n')
    text = "\n".join(msgs)
    assert 'exchanges.sim.pairs = ["btc"]' in text
    assert 'executors.a.exchanges[0] = "mars": expected an exchange defined in [exchanges]' in text
    assert 'strategies.s.file = "nope.py": expected a readable Python file' in text
    assert 'strategies.s.account = "b": expected a configured executor (have: a)' in text
    assert 'strategies.s.pairs[0] = "venus:BTC-USDT": expected a configured exchange' in text
    live = "\n".join(issues(tmp_path, '[executors.a]\nexchanges = []\nmode = "live"\n'))
    assert "executors.a.exchanges = []: expected exactly one exchange for a live account" in live
    assert any('executors.a.mode' in m for m in issues(tmp_path, '[executors.a]\nexchanges = []\nmode = "lve"\n'))


def test_each_driver_accepts_only_the_markets_it_supports(tmp_path):
    msgs = issues(tmp_path, '[exchanges.bn]\ndriver = "binance"\nmarket = "perp"\n'
                            '[exchanges.hl]\ndriver = "hyperliquid"\nmarket = "perp"\npairs = ["spot:HYPE-USDC"]\n')
    assert any('exchanges.bn.market = "perp": expected a market binance supports: spot' in m for m in msgs)
    assert any('exchanges.hl.pairs[0] = "spot:HYPE-USDC": expected a pair on a market hyperliquid supports: perp'
               in m for m in msgs)
    (msg,) = issues(tmp_path, '[exchanges.x]\ndriver = "kraken"\n')
    assert 'exchanges.x.driver = "kraken": expected one of "sim", "binance", "bybit", "hyperliquid", "paradex"' in msg
    (msg,) = issues(tmp_path, '[exchanges.x]\ndriver = "binance"\napi_base = "https://api.binance.com"\n')
    assert "only loopback" in msg


LIVE = """
[exchanges.bn]
driver = "{driver}"
[exchanges.other]
driver = "sim"
[executors.real]
mode = "live"
exchanges = {exchanges}
{creds}
"""


def test_live_accounts_need_one_live_exchange_and_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("WT_KEY", "key-value-4711")
    monkeypatch.setenv("WT_SECRET", "secret-value-0815")
    ok = LIVE.format(driver="binance", exchanges='["bn"]', creds='api_key_env = "WT_KEY"\nsecret_env = "WT_SECRET"')
    cfg = load_config(write(tmp_path, ok))
    (spec,) = [c for c in cfg.children if c.name == "executor.real"]
    assert spec.args["venue"]["driver"] == "binance" and spec.args["mode"] == "live"
    assert "4711" not in str(spec.args) and "0815" not in str(spec.args)  # names only, never the values
    text = "\n".join(issues(tmp_path, LIVE.format(driver="binance", exchanges='["bn"]', creds="")))
    assert "executors.real.api_key_env: missing required key (expected credentials for a live account" in text
    text = "\n".join(issues(tmp_path, LIVE.format(driver="sim", exchanges='["bn"]', creds='secrets_file = "x"')))
    assert 'executors.real.exchanges[0] = "bn": expected an exchange whose driver trades live' in text
    text = "\n".join(issues(tmp_path, LIVE.format(driver="binance", exchanges='["bn", "other"]', creds="")))
    assert 'executors.real.exchanges = ["bn", "other"]: expected exactly one exchange for a live account' in text
    text = "\n".join(issues(tmp_path, ok + '[executors.real.live]\nunknown_orders = "panic"\n'))
    assert 'executors.real.live.unknown_orders = "panic"' in text


def test_one_live_executor_per_exchange_account(tmp_path, monkeypatch):
    monkeypatch.setenv("WT_KEY", "k1")
    monkeypatch.setenv("WT_SECRET", "s1")
    creds = 'api_key_env = "WT_KEY"\nsecret_env = "WT_SECRET"'
    text = LIVE.format(driver="binance", exchanges='["bn"]', creds=creds) + \
        '[executors.twin]\nmode = "live"\nexchanges = ["bn"]\n' + creds + "\n"
    assert 'executors.twin.exchanges = ["bn"]: expected an account no other executor trades' in \
        "\n".join(issues(tmp_path, text))
