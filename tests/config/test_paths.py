"""wispctl finds a daemon from the config's root keys and ``[daemon]`` table alone (``read_toml(...,
only_daemon=True)``), cut out of the text without parsing the rest. The invariant: for any text the whole
parse accepts, the cut gives the same ``daemon`` table, whatever sits in strings, arrays and comments that
looks like a header."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wispd.config import ConfigError
from wispd.config.paths import daemon_part, read_toml

HEADERS = ["[daemon]", "[ daemon ]  # the daemon", '["daemon"]', "[[daemon]]", "[daemon.metrics]", "[daemon.limits]",
           "[[daemon.x]]", '["daemon".metrics]', '["daemon.q"]', "[strategies.a]", "[strategies.b]", "[executors.p]"]
VALUES = [  # KEY becomes a fresh name each time, so most documents parse
    'KEY = "/r"', "KEY = 1", 'daemon.KEY = "/dotted"', 'daemon = { KEY = "/inline" }', "KEY = [[1], [2]]",
    'KEY = [\n[1],\n["daemon"],\n"[daemon]",\n]', 'KEY = [\n[daemon]\n]', 'KEY = """\n[daemon]\nKEY2 = "/evil"\n"""',
    "KEY = '''\n[strategies.c]\n'''", 'KEY = "[daemon]"', "# [daemon]", "",
]
BLOCK = st.one_of(st.sampled_from(HEADERS), st.sampled_from(VALUES))


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(blocks=st.lists(BLOCK, max_size=12))
def test_the_cut_reads_the_same_daemon_table_as_the_whole_parse(tmp_path_factory, blocks):
    text = "\n".join(b.replace("KEY2", f"j{i}").replace("KEY", f"k{i}") for i, b in enumerate(blocks)) + "\n"
    try:
        whole = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the daemon refuses such a file: no daemon to reach
    path = Path(tmp_path_factory.mktemp("cfg")) / "wispd.toml"
    path.write_text(text)
    assert read_toml(path, only_daemon=True).get("daemon") == whole.get("daemon"), text


def test_a_big_config_is_cut_to_its_daemon_table():
    text = '[daemon]\nrun_dir = "/r"\n' + "".join(f'[strategies.s{i}]\nmodule = "m"\n' for i in range(100))
    assert daemon_part(text) == '\n[daemon]\nrun_dir = "/r"\n'


def test_a_syntax_error_in_the_daemon_table_is_reported_from_the_whole_file(tmp_path):
    path = tmp_path / "wispd.toml"
    path.write_text('[daemon]\nrun_dir = \n[strategies.a]\nmodule = "m"\n')
    with pytest.raises(ConfigError, match="valid TOML"):
        read_toml(path, only_daemon=True)
