"""Which sources are remote, and which are refused before ssh runs (no ssh needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from velora_tui.cli import main
from velora_tui.remote.address import (
    AddressError,
    Host,
    RemoteSource,
    expand_hosts,
    parse_source,
)
from velora_tui.remote.ssh import SshOptions, ssh_argv


def test_scp_form() -> None:
    assert parse_source("gpu1:runs/") == [RemoteSource(Host("gpu1"), "runs/")]
    assert parse_source("me@gpu1:~/runs") == [RemoteSource(Host("gpu1", "me"), "~/runs")]
    assert parse_source("gpu1:") == [RemoteSource(Host("gpu1"), "metrics.db")]
    assert parse_source("[::1]:/x/metrics.db") == [RemoteSource(Host("::1"), "/x/metrics.db")]


def test_url_form() -> None:
    assert parse_source("ssh://me@gpu1:2222/srv/runs") == [
        RemoteSource(Host("gpu1", "me", 2222), "/srv/runs")
    ]
    assert parse_source("ssh://gpu1/~/runs") == [RemoteSource(Host("gpu1"), "~/runs")]
    assert parse_source("ssh://[::1]:22/x") == [RemoteSource(Host("::1", None, 22), "/x")]
    with pytest.raises(AddressError, match="port"):
        parse_source("ssh://gpu1:99999/x")


@pytest.mark.parametrize(
    "text", ["metrics.db", "runs/", "./a:b", "/abs/x:y", "~/a:b", "runs/a:b/metrics.db", ""]
)
def test_local_paths_stay_local(text: str) -> None:
    assert parse_source(text) is None


def test_an_existing_local_file_with_a_colon_stays_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old:copy.db").write_bytes(b"")
    assert parse_source("old:copy.db") is None
    assert parse_source("new:copy.db") == [RemoteSource(Host("new"), "copy.db")]


def test_host_lists() -> None:
    assert expand_hosts("node[01-03]") == ["node01", "node02", "node03"]
    assert expand_hosts("gpu[1,3,5-6]") == ["gpu1", "gpu3", "gpu5", "gpu6"]
    assert expand_hosts("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert expand_hosts("a,b,c[8-10]") == ["a", "b", "c8", "c9", "c10"]
    sources = parse_source("me@node[01-16]:runs/")
    assert sources is not None
    assert len(sources) == 16
    assert sources[15] == RemoteSource(Host("node16", "me"), "runs/")
    for bad in ("node[3-1]", "node[a-b]", "node[1-2", "node[1-5000]"):
        with pytest.raises(AddressError):
            expand_hosts(bad)


@pytest.mark.parametrize(
    "text",
    [
        "-oProxyCommand=touch /tmp/x:y",
        "-oProxyCommand=x:y",
        "ssh://-oProxyCommand=x/y",
        "-l:path",
        "a b:path",
        "a\tb:path",
        "a\x1b[31m:path",
        "-x@host:path",
        "ssh://-me@host/x",
        "node[01-02],-evil:path",
    ],
)
def test_hosts_and_users_that_could_be_options_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_source(text)


def test_ssh_argv_puts_the_host_after_the_options_and_quotes_the_remote_words() -> None:
    argv = ssh_argv(Host("gpu1", "me", 2222), ["python3", "runs/$(touch /tmp/x)"], SshOptions())
    assert argv[0] == "ssh"
    assert argv[-3:-1] == ["--", "gpu1"]
    assert "BatchMode=yes" in argv
    assert argv[argv.index("-l") + 1] == "me"
    assert argv[-1] == "echo velora-tui-ready && exec python3 'runs/$(touch /tmp/x)'"
    with pytest.raises(AddressError):
        ssh_argv(Host("-oProxyCommand=x"), ["true"], SshOptions())


def test_a_huge_bracket_is_refused_before_it_is_expanded() -> None:
    """Thousands of items inside one bracket: refused by their count, not after building every
    name (2,000 x `0-1000` took 267 MB before the 1,024-host check)."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(AddressError, match="more than 1024 hosts"):
            expand_hosts("n[" + ",".join(["0-1000"] * 2000) + "]")
        with pytest.raises(AddressError, match="more than 1024 hosts"):
            expand_hosts("n[" + ",".join(str(i) for i in range(5000)) + "]")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    assert len(expand_hosts("n[" + ",".join(str(i) for i in range(1024)) + "]")) == 1024


@pytest.mark.parametrize(
    "group",
    ["1" * 5000, "1-" + "9" * 5000, "0" * 4999 + "1"],
    ids=["bound", "upper-bound", "zero-padded"],
)
def test_a_bound_of_thousands_of_digits_is_a_clear_refusal(group: str) -> None:
    with pytest.raises(AddressError, match="host range"):
        expand_hosts(f"node[{group}]")


def test_a_huge_bound_is_a_usage_error_on_the_command_line() -> None:
    """In process (click's runner): the argument is refused before any source is read."""
    result = CliRunner().invoke(main, ["ls", "node[" + "1" * 5000 + "]:runs"])
    assert result.exit_code == 2
    assert "internal error" not in result.output
    assert "host range" in result.output


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("ssh://gpu1//srv/runs", "/srv/runs"),
        ("ssh://gpu1///srv/runs", "/srv/runs"),
        ("gpu1://srv/runs", "/srv/runs"),
        ("ssh://gpu1/srv//runs", "/srv//runs"),
    ],
)
def test_leading_slashes_are_one(text: str, path: str) -> None:
    """POSIX lets `//x` differ from `/x`; on the hosts velora runs on it is the same file, and the
    reader's `file:` URI took `//srv` for an authority."""
    (source,) = parse_source(text) or []
    assert source.path == path


def test_the_reader_opens_any_absolute_path(tmp_path: Path) -> None:
    """The reader's URI is quoted and has an empty authority, whatever the path (`//x` was
    `file://x`: an invalid URI authority)."""
    import shutil

    from tests.support.databases import SAMPLE_DB
    from velora_tui.remote.reader import Database

    folder = tmp_path / "a?b#c%20d"
    folder.mkdir()
    shutil.copy(SAMPLE_DB, folder / "metrics.db")
    for path in (str(folder / "metrics.db"), "/" + str(folder / "metrics.db")):
        conn = Database(0, 0, path, None).connect()
        try:
            assert conn.execute("SELECT count(*) FROM experiment").fetchone()[0] == 3
        finally:
            conn.close()
