"""docs/configuration.md, generated from the validator's schema (a test keeps the file in step)."""

from __future__ import annotations

import orjson

from wispd.config.loader import root_spec
from wispd.config.schema import Field, Table

TITLES = {"daemon": "The daemon", "exchanges": "Exchanges (one ingestor each: `ingestor.<name>`)",
          "executors": "Executors (one per account: `executor.<name>`)",
          "strategies": "Strategies (one process each, named after the strategy)",
          "recorders": "Recorders (one process each: the bus to segment files for backtests)",
          "processes": "Generic processes (any entry point `package.module:function`)"}


def _rows(spec: Table, path: str) -> list[str]:
    rows = []
    for key, sub in spec.fields.items():
        p = f"{path}.{key}"
        if isinstance(sub, Field):
            default = "" if sub.default in (None, [], {}) else f"`{orjson.dumps(sub.default).decode()}`"
            rows.append(f"| `{p}` | {sub.type.__name__} | {'yes' if sub.required else ''} | {default} | "
                        f"{sub.expected} |")
        elif isinstance(sub, Table):
            rows += _rows(sub, p)
        else:
            rows += _rows(sub.item, p + ".<name>")
    return rows


def markdown() -> str:
    lines = ["# Configuration reference", "",
             "Generated from the validator's schema (`wispd/config/`), so it is exactly what `wispd run` accepts.",
             "Every key is checked before anything starts; an unknown key, a wrong type or a bad value exits 78 with",
             "a message naming the file, the key path, the value and what was expected. Relative paths are relative",
             "to the config file. Secrets are never written in the file: executors take environment variable",
             "*names* (`api_key_env`, `secret_env`) or a `secrets_file` of mode 0600; a secret-looking key inside",
             "`params` or `args` is refused.", ""]
    for key, sub in root_spec().fields.items():
        lines += [f"## `[{key}]`: {TITLES[key]}", "", "| key | type | required | default | expected |",
                  "| --- | --- | --- | --- | --- |"]
        lines += _rows(sub, key) if isinstance(sub, Table) else _rows(sub.item, f"{key}.<name>")
        lines.append("")
    lines += ["## Restart and limits defaults", "",
              "Unset `restart.policy` takes the kind's default (ingestor, executor, process: permanent; strategy:",
              "transient). Unset `limits.start_timeout` takes the kind's default (ingestor and executor 60 s,",
              "strategy and process 30 s); unset `heartbeat_timeout`, `drain_timeout` and `stop_timeout` take the",
              "`[daemon]` values.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
