"""`wispctl keygen FILE`: a CURVE key pair for tcp:// endpoints (the daemon's, or an outside client's).

Writes the z85 secret key to FILE (mode 0600, refused if FILE exists) and prints the public key: give
the daemon the file as `daemon.curve_secret_file`; give an outside client's public key a line in the
file named by `daemon.curve_authorized_keys`. Runs locally; no daemon needed.
"""

from __future__ import annotations

import argparse
import os
import sys

from wispd.control.verbs._common import EXIT_ERROR, EXIT_OK

NAME = "keygen"
HELP = "write a CURVE secret key to FILE (0600) and print its public key (for tcp:// endpoints)"
MUTATING = False
LOCAL = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="where to write the secret key (must not exist)")


def run_local(ns: argparse.Namespace) -> int:
    import zmq

    public, secret = zmq.curve_keypair()
    try:
        fd = os.open(ns.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        print(f"wispctl: cannot create {ns.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret + b"\n")
    print(f"secret key written to {ns.file} (mode 0600)")
    print(f"public key: {public.decode()}")
    return EXIT_OK
