"""The head start's reading of a command's words (only its SOURCEs make a connection), and the
remembered interpreters (untrusted values refused, a planted link never followed)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click
import pytest

from velora_tui.cli import COMMANDS, READS_SOURCES
from velora_tui.remote import interpreters
from velora_tui.remote.address import Host
from velora_tui.remote.launch import VALUE_OPTIONS, _sources

VT = Host("vt")


def hosts_and_paths(words: list[str]) -> tuple[str, list[tuple[str, str]]]:
    python, sources = _sources(words)
    return python, [(s.host.label, s.path) for s in sources]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["vt:/a"], [("vt", "/a")]),
        (["-n", "1", "vt:/a"], [("vt", "/a")]),
        (["--json", "vt:/a", "gpu[1-2]:runs"], [("vt", "/a"), ("gpu1", "runs"), ("gpu2", "runs")]),
        (["3", "vt:/a", "./local.db"], [("vt", "/a")]),  # an id, a local path
        # Values of options are never sources, however they look.
        (["--exec", "gpu1:x", "vt:/a"], [("vt", "/a")]),
        (["--output", "gpu1:out.csv", "2", "vt:/a"], [("vt", "/a")]),
        (["-o", "gpu1:out.csv", "vt:/a"], [("vt", "/a")]),
        (["--slurm-path=gpu1:{workdir}", "vt:/a"], [("vt", "/a")]),
        (["-fn", "gpu1:x", "vt:/a"], [("vt", "/a")]),  # -f then -n, which takes the next word
        (["-fn5", "vt:/a"], [("vt", "/a")]),
        (["-n5", "vt:/a"], [("vt", "/a")]),
        (["-e", "1", "-e", "2", "vt:/a"], [("vt", "/a")]),
        # After `--` every word is a SOURCE.
        (["--", "-n", "vt:/a"], [("vt", "/a")]),
        (["--exec"], []),  # an option missing its value
        (["-oProxyCommand=touch /tmp/x:y"], []),
        (["bad host:/a", "-x:y"], []),  # refused addresses make nothing
        (["slurm:"], []),
        (["slurm:gpu1", "vt:/a"], []),  # a Slurm command reaches its hosts otherwise
    ],
)
def test_only_sources_are_read(words: list[str], expected: list[tuple[str, str]]) -> None:
    assert hosts_and_paths(words)[1] == expected


def test_the_remote_python_is_the_one_given() -> None:
    assert hosts_and_paths(["vt:/a"])[0] == "python3"
    assert hosts_and_paths(["--remote-python", "/opt/py/bin/python3", "vt:/a"]) == (
        "/opt/py/bin/python3",
        [("vt", "/a")],
    )
    assert hosts_and_paths(["--remote-python=python3.12", "vt:/a"])[0] == "python3.12"


def _value_options(command: click.Command) -> tuple[set[str], set[str]]:
    values: set[str] = set()
    flags: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option):
            names = {*param.opts, *param.secondary_opts}
            (flags if param.is_flag or param.count else values).update(names)
    return values, flags


def test_the_table_of_options_with_values_is_the_commands_own() -> None:
    """Every option that takes a value, in every command that reads its sources, is in
    VALUE_OPTIONS (else its value could be taken for a source), and no flag is."""
    assert set(READS_SOURCES) <= set(COMMANDS)
    wanted: set[str] = set()
    for name, entry in COMMANDS.items():
        command = importlib.import_module(f"velora_tui.cli.{entry.module}").command
        takes_sources = any(
            isinstance(p, click.Argument) and p.name == "sources" for p in command.params
        )
        # Reading sources in its own process is to have a head start (serve's tabs read them).
        assert (name in READS_SOURCES) == (takes_sources and name != "serve"), name
        if name in READS_SOURCES:
            values, flags = _value_options(command)
            wanted |= values
            assert not flags & VALUE_OPTIONS, (name, flags & VALUE_OPTIONS)
    assert wanted == VALUE_OPTIONS


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VELORA_TUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_an_interpreter_is_remembered_per_host_and_name(cache: Path) -> None:
    assert interpreters.remembered(VT, "python3") is None
    exe = "/root/.pyenv/versions/3.11.7/bin/python3.11"
    interpreters.remember(VT, "python3", exe)
    assert interpreters.remembered(VT, "python3") == exe
    assert interpreters.remembered(Host("vt", "me"), "python3") is None
    assert interpreters.remembered(VT, "python3.12") is None
    assert interpreters.listed() == [("vt", "python3", exe)]
    assert oct(os.stat(interpreters.folder()).st_mode & 0o777) == "0o700"
    interpreters.forget(VT, "python3")
    assert interpreters.remembered(VT, "python3") is None
    interpreters.remember(VT, "python3", "/usr/bin/python3")
    interpreters.clear()
    assert interpreters.listed() == []
    assert not interpreters.folder().exists()


@pytest.mark.parametrize(
    "exe",
    [
        None,
        3,
        ["/usr/bin/python3"],
        "",
        "python3",  # not a path: the name itself
        "usr/bin/python3",
        "/usr/bin/rm",  # not a python
        "/tmp/python3; rm -rf ~",
        "/usr/bin/python3\n",
        "/usr/bin/python3\x1b[2J",
        "/usr/bin/python3 -c evil",
        "/" + "a" * 2000 + "/python3",
    ],
)
def test_what_a_host_says_it_runs_is_checked(cache: Path, exe: object) -> None:
    interpreters.remember(VT, "python3", exe)
    assert interpreters.remembered(VT, "python3") is None
    assert interpreters.listed() == []


def test_a_remembered_file_that_is_not_ours_is_not_used(cache: Path, tmp_path: Path) -> None:
    interpreters.remember(VT, "python3", "/usr/bin/python3")
    (entry,) = interpreters.folder().iterdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text('{"host": "vt", "python": "python3", "exe": "/usr/bin/python3"}')
    entry.unlink()
    entry.symlink_to(elsewhere)  # a link planted in its place is never followed
    assert interpreters.remembered(VT, "python3") is None
    entry.unlink()
    entry.write_text('{"host": "other", "python": "python3", "exe": "/usr/bin/python3"}')
    assert interpreters.remembered(VT, "python3") is None  # not what it is named for
    entry.write_bytes(b"\xff" * 10_000)
    assert interpreters.remembered(VT, "python3") is None
    assert interpreters.listed() == []


def test_a_folder_others_can_write_to_is_refused(cache: Path) -> None:
    interpreters.remember(VT, "python3", "/usr/bin/python3")
    interpreters.folder().chmod(0o777)
    assert interpreters.remembered(VT, "python3") is None
    assert interpreters.listed() == []
    interpreters.clear()  # refuses to remove what is not ours alone
    assert interpreters.folder().exists()
