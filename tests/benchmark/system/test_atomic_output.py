"""One atomic-output helper for every file the suite writes (issue 33, class 1).

Each output gets a temporary name of its own beside it, renamed into place when complete and
removed on failure, Ctrl-C or SIGTERM; orphans of killed writers go with the next command; a
command's outputs that could not be written are refused in one line before any work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.report import plots
from benchmark.system import io
from benchmark.system.confine import confined_to
from benchmark.system.errors import BenchmarkError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(io.TEMPORARY))


def test_outputs_written_together_have_temporary_names_of_their_own(tmp_path):
    a, b = tmp_path / "labels.tif", tmp_path / "probs.tif"
    with io.atomic_output(a) as tmp_a, io.atomic_output(b) as tmp_b, io.atomic_output(a) as again:
        assert len({tmp_a, tmp_b, again}) == 3
        assert all(t.parent == tmp_path and t.name.endswith(".tmp") for t in (tmp_a, tmp_b))
        assert str(os.getpid()) in tmp_a.name
        tmp_a.write_bytes(b"labels")
        tmp_b.write_bytes(b"probs")
        again.write_bytes(b"labels, second writer")
        assert not a.exists() and not b.exists()  # nothing under a final name until complete
    assert a.read_bytes() == b"labels" and b.read_bytes() == b"probs"  # the first renamed last
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    io.atomic_write_text(path, "old")
    with pytest.raises(ZeroDivisionError), io.atomic_output(path) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_a_folder_as_destination_is_refused_before_writing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(BenchmarkError, match="is a directory"), io.atomic_output(tmp_path / "out"):
        pytest.fail("the block must not run")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"--out": "x.tif", "--probabilities": "x.tif"}, "the same file as --out"),
        ({"--out": "x.tif", "--probabilities": "sub/../x.tif"}, "the same file as --out"),
        ({"--out": "x.tif", "--probabilities": "link.tif"}, "the same file as --out"),
        ({"--out": "input.tif"}, "the same file as --input optical"),
        ({"--out": "folder"}, "is a directory; expected the name of a file"),
        ({"--out": "pipe"}, "exists and is not a regular file"),
        ({"--out": "old.tif"}, "exists; choose another name or pass --force"),
        ({"--out": "absent/x.tif"}, "its folder absent does not exist"),
        ({"--out": "old.tif/x.tif"}, "its folder old.tif is not a folder"),
    ],
)
def test_outputs_that_cannot_be_written_are_one_line(tmp_path, monkeypatch, outputs, message):
    monkeypatch.chdir(tmp_path)
    Path("input.tif").write_bytes(b"scene")
    Path("old.tif").write_bytes(b"old")
    Path("folder").mkdir()
    Path("sub").mkdir()
    os.mkfifo("pipe")
    Path("link.tif").symlink_to("x.tif")  # a dangling link to the other output
    before = sorted(p.name for p in tmp_path.iterdir())
    paths = {flag: Path(p) for flag, p in outputs.items()}
    with pytest.raises(BenchmarkError, match=message) as error:
        io.check_outputs(paths, reads={"--input optical": Path("input.tif")})
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_force_allows_an_existing_file_but_never_a_folder(tmp_path):
    (tmp_path / "old.tif").write_bytes(b"old")
    io.check_outputs({"--out": tmp_path / "old.tif"}, force=True)
    (tmp_path / "d").mkdir()
    with pytest.raises(BenchmarkError, match="is a directory"):
        io.check_outputs({"--out": tmp_path / "d"}, force=True)


def test_an_unwritable_folder_is_refused_in_one_line(tmp_path):
    # /proc refuses new files even to root (tests may run as root: chmod would not do).
    with pytest.raises(BenchmarkError, match=r"--out /proc/labels\.tif: not writable"):
        io.check_outputs({"--out": Path("/proc/labels.tif")})
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(BenchmarkError, match="not writable"):
            io.check_outputs({"--out": locked / "labels.tif"})


def test_an_output_outside_the_commands_folders_is_refused(tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "here" / "link").symlink_to(tmp_path / "elsewhere")
    with confined_to([tmp_path / "here"]), pytest.raises(BenchmarkError, match="refusing"):
        io.check_outputs({"--out": tmp_path / "here" / "link" / "x.png"})


def test_make_folders_probes_the_nearest_existing_folder(tmp_path):
    io.check_outputs({"--out": tmp_path / "new" / "deeper" / "x.png"}, make_folders=True)
    assert not (tmp_path / "new").exists()  # checked, nothing made


WRITER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from benchmark.system import io
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    folder = Path(sys.argv[1])
    with io.atomic_output(folder / "a.tif") as a, io.atomic_output(folder / "b.tif") as b:
        a.write_bytes(b"partial")
        b.write_bytes(b"partial")
        print("writing", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_writer_removes_its_temporary_files(tmp_path, signum):
    """SIGTERM ends the process as it would have (killed by the signal); Ctrl-C raises
    KeyboardInterrupt, which unwinds the writes (Python then also ends by the signal)."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert child.stdout.readline().strip() == b"writing"
        assert len(leftovers(tmp_path)) == 2
        child.send_signal(signum)
        assert child.wait(timeout=30) == -signum
    finally:
        child.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphans_go_with_the_next_command_and_live_writes_stay(tmp_path):
    dead, alive = ended_pid(), os.getppid()
    orphan = tmp_path / f".labels.tif.{dead}.abc123.tmp"
    live = tmp_path / f".labels.tif.{alive}.def456.tmp"
    other = tmp_path / f".probs.tif.{dead}.ghi789.tmp"
    old = tmp_path / ".report.md.k2j3h4.tmp"  # another writer's, from long ago
    for path in (orphan, live, other, old):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = io.remove_orphans(tmp_path, 3600, name="labels.tif", dead_writers=True)
    assert removed == [orphan] and live.exists() and other.exists() and old.exists()
    assert io.remove_orphans(tmp_path, 3600) == [old]  # by age only: live writers elsewhere
    assert sorted(io.remove_orphans(tmp_path)) == sorted([live, other])  # a locked folder


def test_figures_go_through_the_helper(tmp_path):
    fig = plots.new_figure(2, 2)
    fig.subplots().plot([0, 1], [1, 0])
    paths = plots.save(fig, tmp_path / "figures" / "curve")
    assert [p.name for p in paths] == ["curve.png", "curve.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert leftovers(tmp_path / "figures") == []


def test_show_data_refuses_a_figure_it_could_not_write_before_loading_data(tmp_path, capsys):
    (tmp_path / "figures").mkdir()
    cases = [
        (tmp_path / "figures", "is a directory"),
        (Path("/proc/sample.png"), "not writable"),
        (tmp_path / "sample.xyz", "cannot write a .xyz figure"),
    ]
    for out, message in cases:
        capsys.readouterr()
        data = tmp_path / "data"
        assert main(["show-data", "--data-root", str(data), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not data.exists()  # no dataset was generated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


def test_report_and_profile_refuse_an_unwritable_folder_before_any_work(tmp_path, capsys):
    fixture = Path(__file__).resolve().parents[2] / "data" / "report_fixture"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cases = [
        (["report", str(fixture), "--out", "/proc/report"], "report folder /proc/report: not"),
        (["report", str(fixture), "--out", str(blocker / "r")], "a_file is a file"),
        (["profile", "step", "--out", "/proc/profile"], "--out /proc/profile: not writable"),
        (["profile", "step", "--out", str(blocker)], "exists and is not a folder"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
