"""Which sources are remote, and which are refused before ssh runs (no ssh needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
