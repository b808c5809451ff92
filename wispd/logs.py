"""Structured JSON-lines logging shared by the supervisor and every child.

Each line is one orjson object: ``ts`` (UTC, ms), ``level``, ``child``, ``pid``, ``event`` and the event's
fields. Lines go to stderr (journald under systemd; readable text when stderr is a terminal, or with
``WISPD_LOG_FORMAT=text``) and to ``<log_dir>/<child>.log`` with size rotation, which ``wispctl logs`` reads. Field names that look like secrets are masked before anything is written, so a
careless ``log.info("connect", api_key=...)`` cannot leak a key.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson

_SECRET_FIELD = re.compile(r"secret|passw|passphrase|private|api_?key|token|signature|credential", re.I)
_MASK = "***"

_state: dict[str, Any] = {"child": "wispd"}


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Mask values whose key names a secret, recursively through nested dicts."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if _SECRET_FIELD.search(str(key)) and value not in (None, ""):
            out[key] = _MASK
        elif isinstance(value, dict):
            out[key] = redact(value)
        elif isinstance(value, str) and len(value) > 12:
            out[key] = redact_text(value)
        else:
            out[key] = value
    return out


# Signed request parts that ccxt's error messages repeat (the URL of a failed request carries its signature,
# Hyperliquid bodies carry r/s of the EIP-712 signature): replaced wherever they appear in a log line.
_SECRET_TEXT = re.compile(r"(?i)((?:signature|apikey|api_key|x-mbx-apikey|secret|privatekey|token)[\"']?\s*[=:]\s*[\"']?)"
                          r"[^&\s\"',{}]+")
_HEX_SECRET = re.compile(r"\b0x[0-9a-fA-F]{64}\b")  # a 32-byte value: a private key, or r/s of a signature


def redact_text(text: str) -> str:
    """Mask signatures and keys inside free text (URLs, JSON bodies): ``signature=ab12`` -> ``signature=***``."""
    return _HEX_SECRET.sub("0x***", _SECRET_TEXT.sub(r"\1***", text)) if text else text


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files are 0640 whatever the umask, the rotated ones included (they hold order ids and reasons)."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        os.fchmod(fd, 0o640)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # noqa: SIM115


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        doc: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "child": _state["child"],
            "pid": record.process,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        for key, value in redact(fields).items():
            doc[key if key not in doc else f"field_{key}"] = value  # never overwrite ts/level/child/pid/event
        if record.exc_info:
            doc["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(JsonFormatter):
    """For a terminal: ``HH:MM:SS.mmm LEVEL child event key=value ...`` (files and journald stay JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = orjson.loads(super().format(record))
        fields = " ".join(f"{k}={v}" for k, v in doc.items()
                          if k not in ("ts", "level", "child", "pid", "event", "traceback") and v is not None)
        line = f"{doc['ts'][11:23]} {doc['level'].upper():<7} {doc['child']:<14} {doc['event']} {fields}".rstrip()
        return line + ("\n" + doc["traceback"].rstrip() if doc.get("traceback") else "")


def _terminal_format() -> bool:
    choice = os.environ.get("WISPD_LOG_FORMAT", "auto")
    return choice == "text" or (choice == "auto" and sys.stderr.isatty())


class EventLogger:
    """``log.info("event_name", key=value, ...)``: events with fields instead of formatted prose."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: Any = None) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"event": event, "fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log at error level with the current exception's traceback."""
        self._log(logging.ERROR, event, fields, exc_info=sys.exc_info())


class LimitedLog:
    """Log lines about bad input, at most ``per_minute`` per kind: a flood of garbage must not rotate the
    crash tracebacks out of the log. The next line after a quiet spell says how many were left out."""

    def __init__(self, log: EventLogger, per_minute: float = 10.0) -> None:
        from wispd.ratelimit import KeyedBuckets

        self.log = log
        self.buckets = KeyedBuckets(per_minute / 60.0, per_minute)
        self.suppressed: dict[str, int] = {}

    def __call__(self, level: str, event: str, kind: str = "", **fields: Any) -> None:
        key = f"{event}:{kind}"
        if not self.buckets.take(key):
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return
        left_out = self.suppressed.pop(key, 0)
        if left_out:
            fields["suppressed_since_last"] = left_out
        getattr(self.log, level)(event, **fields)


def get_logger(component: str = "wispd") -> EventLogger:
    return EventLogger(logging.getLogger(f"wispd.{component}"))


def log_path(log_dir: Path, child: str) -> Path:
    """Where a child's log file lives; the one rule both writers and ``wispctl logs`` use."""
    return log_dir / f"{child}.log"


def append_record(log_dir: Path, child: str, pid: int | None, level: str, event: str, **fields: Any) -> None:
    """Write one record into *another* process's log file (the supervisor's hang report into the hung
    child's log, so ``wispctl logs NAME`` shows it). One ``O_APPEND`` write: it cannot interleave with the
    child's own lines. Never raises: a report that cannot be written is still in wispd's own log."""
    doc: dict[str, Any] = {"ts": _iso(time.time()), "level": level, "child": child, "pid": pid, "event": event}
    doc.update(redact(fields))
    try:
        fd = os.open(log_path(log_dir, child), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, orjson.dumps(doc, default=str) + b"\n")
        finally:
            os.close(fd)
    except OSError:
        pass


def setup_logging(
    child: str,
    log_dir: Path | None = None,
    level: str = "info",
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
    stderr: bool = True,
) -> EventLogger:
    """(Re)configure logging for this process. Safe to call again after fork with another child name."""
    _state["child"] = child
    root = logging.getLogger("wispd")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper())
    root.propagate = False
    formatter = JsonFormatter()
    if stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(TextFormatter() if _terminal_format() else formatter)
        root.addHandler(stream)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        fh = PrivateRotatingFileHandler(log_path(log_dir, child), maxBytes=max_bytes, backupCount=backups,
                                        encoding="utf-8")
        fh.setFormatter(formatter)
        root.addHandler(fh)
    return get_logger(child)
