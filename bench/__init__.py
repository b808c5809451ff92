"""Benchmarks (see docs/BENCHMARKS.md). They start wispd with the tests' ``Daemon`` helper, whose config
defaults to five times the production heartbeat and sampling rates (fast tests); a bench passes
``PRODUCTION`` so it measures what a user runs."""

PRODUCTION = {"heartbeat_interval": 1.0, "heartbeat_timeout": 10.0, "sample_interval": 1.0}


def scratch_dir() -> str:
    """A temporary directory under /tmp (short ipc paths; the same file system as a journal's) that is
    removed when the bench exits, however it exits short of SIGKILL: a bench run leaves nothing behind."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="wb-", dir="/tmp")
    atexit.register(shutil.rmtree, path, True)
    return path
