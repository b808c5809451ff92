"""tcp:// endpoints are CURVE or refused: the daemon's children trade over them, an authorized outside
program can subscribe, anyone else gets nothing; without a key the config is refused."""

from __future__ import annotations

import socket
import subprocess
import time

import zmq

from tests.config.test_loader import issues
from tests.helpers import BIN, wait_for


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _keygen(path) -> bytes:
    done = subprocess.run([str(BIN / "wispctl"), "keygen", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.rsplit("public key: ", 1)[1].strip().encode()


def test_children_trade_over_curve_and_outsiders_need_an_authorized_key(daemon, short_tmp):
    server_public = _keygen(short_tmp / "daemon.key")
    client_public, client_secret = zmq.curve_keypair()
    (short_tmp / "authorized").write_text(f"# outside readers\n{client_public.decode()} dashboard\n")
    pub, snap, sig, rep = (_port() for _ in range(4))
    d = daemon(f"""
[exchanges.sim]
driver = "sim"
pairs = ["BTC-USDT"]
pub_endpoint = "tcp://127.0.0.1:{pub}"
snapshot_endpoint = "tcp://127.0.0.1:{snap}"
[exchanges.sim.sim]
prices = {{ BTC-USDT = 60000.0 }}
update_hz = 20.0
[executors.paper]
exchanges = ["sim"]
signals_endpoint = "tcp://127.0.0.1:{sig}"
reports_endpoint = "tcp://127.0.0.1:{rep}"
[executors.paper.paper]
latency_ms = 0.0
[strategies.ticker]
module = "tests.sample_strategies"
class = "Ticker"
params = {{ emit_every = 2 }}
""", curve_secret_file=str(short_tmp / "daemon.key"), curve_authorized_keys=str(short_tmp / "authorized"))
    wait_for(lambda: (d.child("executor.paper")["status"].get("fields") or {}).get("fills", 0) > 2, 30,
             what="the strategy's orders filled over tcp+CURVE")
    ctx = zmq.Context.instance()

    def subscriber(secret: bytes | None, public: bytes | None) -> zmq.Socket:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        if secret is not None:
            sub.curve_secretkey, sub.curve_publickey, sub.curve_serverkey = secret, public, server_public
        sub.setsockopt(zmq.SUBSCRIBE, b"md.sim.spot.BTC-USDT.")
        sub.connect(f"tcp://127.0.0.1:{pub}")
        return sub

    stranger_public, stranger_secret = zmq.curve_keypair()
    allowed = subscriber(client_secret, client_public)
    plain = subscriber(None, None)
    stranger = subscriber(stranger_secret, stranger_public)
    try:
        assert allowed.poll(5000) and allowed.recv().startswith(b"md.sim.spot.BTC-USDT.")
        time.sleep(0.5)
        assert not plain.poll(300) and not stranger.poll(300)
    finally:
        for s in (allowed, plain, stranger):
            s.close()


def test_tcp_without_a_curve_key_is_a_config_error(tmp_path):
    (msg,) = issues(tmp_path, '[exchanges.sim]\ndriver = "sim"\npub_endpoint = "tcp://127.0.0.1:5999"\n')
    assert "ingestor.sim pub_endpoint = \"tcp://127.0.0.1:5999\"" in msg and "daemon.curve_secret_file" in msg
