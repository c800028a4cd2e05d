"""velora-tui's own folders (the cache, each source's stand-ins, the ssh sockets) are used only when
they are ours alone; another user's folder, one others can write to, or a symbolic link in its
place is refused with one line (or, for the sockets' shared name in the temporary folder, left
for a folder nobody can guess). Another user is simulated: mode 0777, symbolic links, and
(as root) os.chown to nobody. No ssh needed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.processes import child_env
from velora_tui.remote.ssh import control_dir
from velora_tui.remote.stand_ins import StandIn, clear_cache, digest, source_folder

NOBODY = 65534
REFUSED = "refused folder"
as_root = pytest.mark.skipif(
    os.getuid() != 0, reason="a folder of another uid can only be made by root (os.chown)"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def ours(path: Path) -> None:
    found = os.lstat(path)
    assert stat.S_ISDIR(found.st_mode)
    assert found.st_uid == os.getuid()
    assert stat.S_IMODE(found.st_mode) == 0o700


def shared_folder(path: Path) -> Path:
    """A folder as another user who lets anyone write there leaves it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def nobodys(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    os.chown(path, NOBODY, NOBODY)
    return path


# -- the helper ------------------------------------------------------------------------------


def test_a_new_folder_is_made_ours_alone_and_one_with_read_bits_tightened(tmp_path: Path) -> None:
    from velora_tui.remote.folders import private_folder

    made = private_folder(tmp_path / "a" / "b")
    ours(made)
    old = tmp_path / "old"
    old.mkdir(mode=0o755)  # as an older velora-tui (or a umask) made it
    old.chmod(0o755)
    ours(private_folder(old))


def test_folders_that_are_not_ours_alone_are_refused(tmp_path: Path) -> None:
    from velora_tui.remote.folders import FolderError, private_folder

    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "file").write_text("")
    shared_folder(tmp_path / "shared")
    group = tmp_path / "group"
    group.mkdir()
    group.chmod(0o770)
    for name, why in [
        ("link", "it is a symbolic link"),
        ("file", "it is not a folder"),
        ("shared", "others can write to it (mode 0777)"),
        ("group", "others can write to it (mode 0770)"),
    ]:
        with pytest.raises(FolderError) as refused:
            private_folder(tmp_path / name)
        assert str(refused.value).startswith(f"{REFUSED} {tmp_path / name}: {why}")
        assert "\n" not in str(refused.value)
    assert mode(tmp_path / "shared") == 0o777  # refused as found: never changed


@as_root
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    from velora_tui.remote.folders import FolderError, private_folder

    with pytest.raises(FolderError, match=f"uid {NOBODY}"):
        private_folder(nobodys(tmp_path / "theirs"))


# -- the cache and the stand-ins ----------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VELORA_TUI_CACHE", str(folder))
    return folder


def source_of_mine(cache: Path, label: str) -> Path:
    return cache / "remote" / f"{os.getpid()}-{digest(label)}"


def test_a_source_folder_is_made_ours_alone(cache: Path) -> None:
    folder = source_folder("gpu1:runs")
    assert folder == source_of_mine(cache, "gpu1:runs")
    for path in (cache, cache / "remote", folder):
        ours(path)
    assert (folder / "source").read_text() == "gpu1:runs"


def test_folders_of_ended_processes_are_removed(cache: Path) -> None:
    """A process killed before it removed its folder: the next one removes it, and what older
    versions kept there (whole copies of remote databases)."""
    ended = cache / "remote" / "999999999-abc"
    ended.mkdir(parents=True, mode=0o700)
    (ended / "metrics.db").write_text("stand-in")
    old_copy = cache / "remote" / "0123456789abcdef0123"
    old_copy.mkdir(mode=0o700)
    (old_copy / "metrics.db").write_bytes(b"x" * 1000)
    cache.chmod(0o700)
    (cache / "remote").chmod(0o700)
    folder = source_folder("gpu1:ended")
    assert sorted((cache / "remote").iterdir()) == [folder]


@pytest.mark.parametrize("plant", ["cache-0777", "remote-0777", "cache-link", "remote-link"])
def test_a_cache_others_can_change_is_refused(cache: Path, tmp_path: Path, plant: str) -> None:
    """A shared VELORA_TUI_CACHE let another user swap a source's folder and read the copy."""
    label = "gpu1:runs"
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    if plant == "cache-0777":
        shared_folder(cache)
    elif plant == "remote-0777":
        shared_folder(cache / "remote")
        cache.chmod(0o700)
    elif plant == "cache-link":
        cache.symlink_to(theirs)
    else:
        cache.mkdir(mode=0o700)
        (cache / "remote").symlink_to(theirs)
    with pytest.raises(OSError, match=REFUSED):
        source_folder(label)
    assert list(theirs.iterdir()) == []


@pytest.mark.parametrize("plant", ["0777", "link", "file"])
def test_what_is_found_in_place_of_a_source_folder_is_replaced(
    cache: Path, tmp_path: Path, plant: str
) -> None:
    """Only we can write in the cache's `remote` folder: what is found under this process's
    name is of an earlier process of the same pid, replaced by a fresh folder of ours alone
    (a link's target is left as it is)."""
    label = "gpu1:runs"
    (cache / "remote").mkdir(parents=True, mode=0o700)
    cache.chmod(0o700)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    place = source_of_mine(cache, label)
    if plant == "0777":
        shared_folder(place)
    elif plant == "link":
        place.symlink_to(theirs)
    else:
        place.write_text("x")
    folder = source_folder(label)
    assert folder == place
    ours(folder)
    assert list(theirs.iterdir()) == []


@as_root
def test_a_cache_of_another_user_is_refused(cache: Path) -> None:
    nobodys(cache)
    with pytest.raises(OSError, match=f"{REFUSED} {cache}: it belongs to another user"):
        source_folder("gpu1:runs")


def test_a_planted_stand_in_link_creates_nothing(cache: Path, tmp_path: Path) -> None:
    """A stand-in is written to a fresh file (O_EXCL | O_NOFOLLOW) and renamed into place: a
    symbolic link found there is replaced, never written through; a link in place of its
    folder is refused."""
    victim = tmp_path / "victim"
    victim.write_text("theirs")
    folder = source_folder("gpu1:planted")
    stand_in = StandIn(folder, "/runs/a/metrics.db")
    stand_in.folder.mkdir(mode=0o700)
    stand_in.path.symlink_to(victim)
    stand_in.start("1:2", True)
    assert victim.read_text() == "theirs"
    assert not stand_in.path.is_symlink()
    assert stand_in.path.read_bytes()[:16] == b"SQLite format 3\x00"

    other = StandIn(folder, "/runs/b/metrics.db")
    other.folder.symlink_to(tmp_path)
    with pytest.raises(OSError, match="symbolic link"):
        other.start("1:3", True)


def test_a_stand_in_folder_others_can_write_to_is_refused(tmp_path: Path) -> None:
    stand_in = StandIn(tmp_path, "/x/metrics.db")
    stand_in.folder.mkdir(mode=0o777)
    stand_in.folder.chmod(0o777)
    with pytest.raises(OSError, match=REFUSED):
        stand_in.start("1:1", True)


# -- `velora-tui cache` and the commands ------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    from tests.support.cli import run_cli

    result = run_cli(*args)
    return result.code, result.out, result.err


def test_a_refused_cache_is_one_line_from_the_commands(cache: Path) -> None:
    shared_folder(cache)
    code, _, err = run("ls", "gpu1.invalid:runs")
    assert code == 1
    assert err == f"velora-tui: {REFUSED} {cache}: others can write to it (mode 0777);" + (
        " remove it, or make it yours alone (chmod 700) if its contents are yours\n"
    )
    assert not (cache / "remote").exists()


def test_cache_clear_never_follows_a_link_out_of_the_cache(cache: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "remote" / "kept").mkdir(parents=True, mode=0o700)
    (elsewhere / "remote" / "kept" / "metrics.db").write_text("not the cache's")
    cache.symlink_to(elsewhere)
    for command in ("info", "clear"):
        code, _, err = run("cache", command)
        assert code == 1
        assert err.startswith(f"velora-tui: {REFUSED} {cache}: it is a symbolic link")
    assert (elsewhere / "remote" / "kept" / "metrics.db").read_text() == "not the cache's"

    # A link inside the cache is removed, not followed.
    cache.unlink()
    inside = source_folder("gpu1:runs")
    (inside / "link").symlink_to(elsewhere)
    code, _, err = run("cache", "clear")
    assert code == 0
    assert not (cache / "remote").exists()
    assert (elsewhere / "remote" / "kept" / "metrics.db").exists()


def test_cache_info_and_clear_of_no_cache_create_nothing(cache: Path) -> None:
    assert run("cache", "info")[0] == 0
    assert run("cache", "clear")[0] == 0
    assert clear_cache() == cache / "remote"
    assert not cache.exists()


# -- the ssh sockets' folder -----------------------------------------------------------------


@pytest.fixture
def long_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache path too long for a socket (common in HPC homes), and a temporary folder of the
    test's own that everyone may write to (as /tmp: 1777)."""
    monkeypatch.setenv("VELORA_TUI_CACHE", str(tmp_path / ("long-" * 12) / "cache"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    temp.chmod(0o1777)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def socket_folder_in_a_child() -> Path:
    """control_dir() as another velora-tui process of ours finds it."""
    code = "from velora_tui.remote.ssh import control_dir; print(control_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    ).stdout
    return Path(out.strip())


def test_sockets_of_a_long_cache_path_share_a_folder_of_ours(long_cache: Path) -> None:
    folder = control_dir()
    assert folder.parent == long_cache
    ours(folder)
    assert control_dir() == folder
    assert socket_folder_in_a_child() == folder  # processes share their connections


@pytest.mark.parametrize("squat", ["0777", "link", "nobody"])
def test_a_socket_folder_another_user_made_first_is_never_used(
    long_cache: Path, tmp_path: Path, squat: str
) -> None:
    """The name in the temporary folder is one anyone can compute: another user who makes it
    first could listen there as a fake ssh master."""
    if squat == "nobody" and os.getuid() != 0:
        pytest.skip("a folder of another uid can only be made by root (os.chown)")
    name = socket_folder_in_a_child().name  # what an attacker computes
    squatted = long_cache / name
    os.rmdir(squatted)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    if squat == "0777":
        shared_folder(squatted)
    elif squat == "link":
        squatted.symlink_to(theirs)
    else:
        nobodys(squatted)
    folder = control_dir()
    assert folder != squatted
    assert folder.resolve() != theirs
    ours(folder)
    assert folder.parent == long_cache
    assert control_dir() == folder  # the same for the whole process
    assert list(theirs.iterdir()) == []


def test_sockets_go_to_the_runtime_folder_first(
    long_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="vt-run-", dir="/tmp"))
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        folder = control_dir()
        assert folder.parent == runtime
        ours(folder)
        assert socket_folder_in_a_child() == folder
    finally:
        subprocess.run(["rm", "-rf", "--", str(runtime)], check=True)


def test_a_socket_folder_in_the_cache_others_can_write_to_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short cache path keeps the sockets in `<cache>/ssh`: refused there as any folder of
    the cache, the host's line says so and the command exits 1 (ssh never runs)."""
    short = Path(tempfile.mkdtemp(prefix="vt-", dir="/tmp"))
    try:
        cache = short / "cache"
        cache.mkdir(mode=0o700)
        shared_folder(cache / "ssh")
        monkeypatch.setenv("VELORA_TUI_CACHE", str(cache))
        with pytest.raises(OSError, match=f"{REFUSED} {cache / 'ssh'}: others can write"):
            control_dir()
        code, _, err = run("ls", "gpu1.invalid:runs")
        assert code == 1
        assert f"refused folder {cache / 'ssh'}: others can write to it" in err
        assert err.count("\n") == 1
    finally:
        subprocess.run(["rm", "-rf", "--", str(short)], check=True)
