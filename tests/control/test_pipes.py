"""Every verb stops quietly when its reader has gone (`wispctl status | head`): no BrokenPipeError
traceback, the SIGPIPE status (141), whatever the verb prints."""

from __future__ import annotations

import os
import subprocess

from tests.helpers import BIN

BODY = '[processes.alpha]\nentry = "tests.kinds:well_behaved"\n'
READERS = (["status"], ["status", "--json"], ["logs", "wispd"], ["logs", "alpha", "--json"], ["orders"],
           ["positions"], ["trades"], ["pnl"], ["health"], ["health", "--json"], ["top"], ["stack", "alpha"],
           ["check"], ["--help"], ["status", "--help"])


def _closed_reader(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: every write fails with EPIPE
    try:
        return subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(w)


def test_every_verb_stops_quietly_on_a_closed_pipe(daemon):
    d = daemon(BODY)
    d.wait_state("alpha", "RUNNING")
    for verb in READERS:
        done = _closed_reader([str(BIN / "wispctl"), "--config", str(d.config), *verb], d.env())
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (verb, done.stderr)
        assert done.returncode == (0 if "--help" in verb else 141), (verb, done.returncode, done.stderr)
    done = _closed_reader([str(BIN / "wispd"), "check", "--config", str(d.config)], d.env())
    assert "Traceback" not in done.stderr and done.returncode == 141, done.stderr
