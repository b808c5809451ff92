"""Who may talk to whom on the data plane (see docs/security.md for the threat model).

- Each boot of wispd makes a random 32-byte key. It never touches a disk: the supervisor hands it, in the
  boot arguments that travel through the forkserver's pipe, to the processes that check credentials
  (executors, and ingestors for tcp:// endpoints), and hands each strategy only its own credential, derived
  from it: ``token(key, name)``. A process without the key cannot compute another strategy's credential.
- On ipc:// endpoints a strategy authenticates with ZeroMQ's PLAIN mechanism (user = its name, password =
  its token): checked once per connection by a ZAP handler in the receiving process, nothing per message.
  The executor then takes the strategy's name from the connection (the ``User-Id`` of every frame), never
  from the frame's own fields.
- tcp:// endpoints are encrypted and authenticated with CURVE, or refused: the server key comes from
  ``daemon.curve_secret_file``; a child's client key is derived from the boot key and its name, so the
  server can recognise it; outside programs are let in by their public key in
  ``daemon.curve_authorized_keys``.
- The control socket (0600, owner only) refuses connections from inside any child's session (a strategy, or
  a process it started): operators run wispctl, strategies do not.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils import z85

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
DOMAIN = b"wispd"


def new_boot_key() -> bytes:
    return os.urandom(32)


def token(key: bytes, name: str) -> str:
    """The PLAIN password of child ``name`` for this boot (hex; the key stays with the supervisor)."""
    return hmac.new(key, b"plain\x1f" + name.encode(), hashlib.sha256).hexdigest()[:40]


def curve_secret(key: bytes, name: str) -> bytes:
    """The CURVE client secret key (z85) of child ``name`` for this boot."""
    return z85.encode(hmac.new(key, b"curve\x1f" + name.encode(), hashlib.sha256).digest())


def curve_public(secret_z85: bytes) -> bytes:
    return zmq.curve_public(secret_z85)


def read_curve_secret(path: str) -> bytes:
    """A z85 CURVE secret key (40 characters) from a 0600 file, as ``wispctl keygen`` writes it."""
    text = open(path, "rb").read().strip().split()[0]  # noqa: SIM115 - small file, read at start
    if len(text) != 40:
        raise ValueError(f"{path}: not a z85 CURVE secret key (40 characters)")
    return text


def read_authorized_keys(path: str) -> dict[bytes, str]:
    """``<z85 public key> <name>`` lines (# comments): outside programs allowed in over tcp://."""
    out: dict[bytes, str] = {}
    for line in open(path, "rb").read().splitlines():  # noqa: SIM115
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        key, _, name = line.partition(b" ")
        if len(key) == 40:
            out[key] = "outside:" + (name.strip().decode(errors="replace") or key[:8].decode())
    return out


@dataclass
class Credentials:
    """What one child presents when it connects (or, for servers, what they accept)."""

    name: str = ""
    token: str = ""
    curve_secret: bytes = b""  # this child's CURVE client secret (tcp:// endpoints)
    server_public: bytes = b""  # the daemon's CURVE server public key

    @classmethod
    def from_boot(cls, raw: dict[str, Any] | None) -> Credentials:
        raw = raw or {}
        return cls(str(raw.get("name", "")), str(raw.get("token", "")),
                   bytes.fromhex(raw["curve_secret"]) if raw.get("curve_secret") else b"",
                   bytes.fromhex(raw["server_public"]) if raw.get("server_public") else b"")

    def client(self, sock: zmq.Socket, endpoint: str, plain: bool = True) -> zmq.Socket:
        """Make ``sock`` present these credentials to ``endpoint`` (call before connect). ``plain=False``
        for servers that do not authenticate on ipc:// (market data)."""
        if endpoint.startswith("tcp://"):
            if not (self.curve_secret and self.server_public):
                raise ValueError(f"{endpoint}: tcp:// needs CURVE keys (daemon.curve_secret_file)")
            sock.curve_secretkey = self.curve_secret
            sock.curve_publickey = curve_public(self.curve_secret)
            sock.curve_serverkey = self.server_public
        elif plain and self.name:
            sock.plain_username = self.name.encode()
            sock.plain_password = self.token.encode()
        return sock


@dataclass
class ServerKeys:
    """What a server process needs to check clients: the boot key, which names it accepts, CURVE keys."""

    key: bytes = b""
    names: frozenset[str] = frozenset()
    curve_secret: bytes = b""
    authorized: dict[bytes, str] = field(default_factory=dict)  # outside CURVE public keys -> their name

    @classmethod
    def from_boot(cls, raw: dict[str, Any] | None) -> ServerKeys:
        raw = raw or {}
        return cls(bytes.fromhex(raw["key"]) if raw.get("key") else b"", frozenset(raw.get("names") or ()),
                   bytes.fromhex(raw["curve_secret"]) if raw.get("curve_secret") else b"",
                   {bytes.fromhex(k): v for k, v in (raw.get("authorized") or {}).items()})

    def server(self, sock: zmq.Socket, endpoint: str, authenticate: bool = True) -> zmq.Socket:
        """Make ``sock`` check its clients (call before bind). Without ``authenticate``, ipc:// stays open
        to any local process of this user (market data); tcp:// is always CURVE."""
        if endpoint.startswith("tcp://"):
            if not self.curve_secret:
                raise ValueError(f"{endpoint}: tcp:// endpoints need daemon.curve_secret_file")
            sock.curve_server = True
            sock.curve_secretkey = self.curve_secret
            sock.zap_domain = DOMAIN
        elif authenticate:
            sock.plain_server = True
            sock.zap_domain = DOMAIN
        return sock

    def verify(self, mechanism: bytes, creds: list[bytes], names: Any = None) -> str | None:
        """The authenticated name of a client (one of ``names``, default the boot list), or None."""
        names = self.names if names is None else names
        if mechanism == b"PLAIN" and len(creds) == 2 and self.key:
            name = creds[0].decode(errors="replace")
            if name in names and hmac.compare_digest(creds[1], token(self.key, name).encode()):
                return name
            return None
        if mechanism == b"CURVE" and len(creds) == 1:
            client = z85.encode(creds[0])
            if client in self.authorized:
                return self.authorized[client]
            for name in names:
                if self.key and hmac.compare_digest(client, curve_public(curve_secret(self.key, name))):
                    return name
        return None


def peer_pid(address: bytes) -> int | None:
    """libzmq gives an ipc peer's credentials as ``localhost:<uid>:<gid>:<pid>`` in the ZAP address."""
    try:
        return int(address.rsplit(b":", 1)[1])
    except (ValueError, IndexError):
        return None


class ZapHandler:
    """The ZAP handler of one ZeroMQ context: a REP socket its owner polls (no thread, no lock).

    ``verify(domain, address, mechanism, credentials)`` returns the user id to accept, or None."""

    def __init__(self, zctx: zmq.Context, verify: Callable[[bytes, bytes, bytes, list[bytes]], str | None]) -> None:
        self.sock = zctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self.verify = verify
        self.refused = 0

    def handle(self) -> None:
        """Answer every pending request (a poller said the socket is readable)."""
        while True:
            try:
                req = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.sock.send_multipart(self.answer(req))

    async def serve(self) -> None:
        """The same on a ``zmq.asyncio`` context (the ingestor's)."""
        while True:
            req = await self.sock.recv_multipart()
            await self.sock.send_multipart(self.answer(req))

    def answer(self, req: list[bytes]) -> list[bytes]:
        if len(req) < 6 or req[0] != b"1.0":
            return [b"1.0", req[1] if len(req) > 1 else b"", b"500", b"bad request", b"", b""]
        _, rid, domain, address, _identity, mechanism, *creds = req
        try:
            user = self.verify(domain, address, mechanism, creds)
        except Exception:  # noqa: BLE001 - a bad handshake is refused, never fatal
            user = None
        if user is None:
            self.refused += 1
            return [b"1.0", rid, b"400", b"refused", b"", b""]
        return [b"1.0", rid, b"200", b"OK", user.encode(), b""]

    def close(self) -> None:
        self.sock.close()


def user_id(frame: zmq.Frame) -> str | None:
    """The authenticated name of the connection a frame came from (None on unauthenticated sockets)."""
    try:
        value = frame.get("User-Id")
    except (zmq.ZMQError, KeyError):
        return None
    return value or None


class DaemonKeys:
    """The supervisor's side: this boot's key, the daemon's CURVE key pair, and what each child is handed."""

    TEST_KEY_FILE_ENV = "WISPD_TEST_BOOT_KEY_FILE"  # test hook: write this boot's key there (mode 0600)

    def __init__(self, curve_secret_file: str = "", authorized_keys_file: str = "") -> None:
        self.key = new_boot_key()
        self.curve_secret = read_curve_secret(curve_secret_file) if curve_secret_file else b""
        self.server_public = curve_public(self.curve_secret) if self.curve_secret else b""
        self.authorized = read_authorized_keys(authorized_keys_file) if authorized_keys_file else {}
        path = os.environ.pop(self.TEST_KEY_FILE_ENV, "")
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.key.hex())

    def client(self, name: str) -> dict[str, str]:
        out = {"name": name, "token": token(self.key, name)}
        if self.curve_secret:
            out.update(curve_secret=curve_secret(self.key, name).hex(), server_public=self.server_public.hex())
        return out

    def server(self, names: list[str]) -> dict[str, Any]:
        return {"key": self.key.hex(), "names": sorted(names), "curve_secret": self.curve_secret.hex(),
                "authorized": {k.hex(): v for k, v in self.authorized.items()}}
