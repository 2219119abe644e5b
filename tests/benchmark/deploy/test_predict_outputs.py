"""`predict`'s outputs through the one atomic-output helper (issue 33, class 1): refused before
any work when they cannot be written, each written under a temporary name of its own, the
temporary files of a killed prediction removed by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import rasterio

import benchmark.deploy.predict as predict_module
from benchmark.cli import main
from benchmark.system import io


def predict(run_dir, inputs, out, *extra) -> int:
    text = ",".join(f"{m}={p}" for m, p in inputs.items())
    return main(["predict", str(run_dir), "--input", text, "--out", str(out), *extra])


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_outputs_that_cannot_be_written_are_refused_before_the_model_loads(
    finished_run, scene, tmp_path, monkeypatch, capsys
):
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded: work began before the outputs were checked")

    monkeypatch.setattr(predict_module, "load_model", never)
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "existing").mkdir()
    (folder / "alias.tif").symlink_to(folder / "labels.tif")
    cases = [
        (["--probabilities", str(folder / "labels.tif")], "labels.tif", "same file as --out"),
        (["--probabilities", str(folder / "alias.tif")], "labels.tif", "same file as --out"),
        (["--force"], "existing", "is a directory"),
        ([], "/proc/labels.tif", "not writable"),
        (["--force"], str(scene["dsm"]), "the same file as --input dsm"),
        (["--force"], str(finished_run / "labels.tif"), "inside the run folder"),
    ]
    for extra, out, message in cases:
        before = files(folder)
        capsys.readouterr()
        assert predict(finished_run, scene, folder / out, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert files(folder) == before
    assert not (finished_run / "labels.tif").exists()


def test_each_output_is_written_under_a_temporary_name_of_its_own(
    finished_run, scene, tmp_path, monkeypatch
):
    used = []
    real = predict_module.atomic_output

    @contextmanager
    def spy(path):
        with real(path) as tmp:
            used.append(tmp)
            yield tmp

    monkeypatch.setattr(predict_module, "atomic_output", spy)
    out, probs = tmp_path / "labels.tif", tmp_path / "labels.probs.tif"
    assert predict(finished_run, scene, out, "--probabilities", str(probs)) == 0
    assert len(used) == 2 and used[0] != used[1]
    with rasterio.open(out) as labels, rasterio.open(probs) as probabilities:
        assert labels.count == 1 and probabilities.count == 6
    assert files(tmp_path) == ["labels.probs.tif", "labels.tif"]


def test_a_killed_predictions_temporary_files_go_with_the_next_one(finished_run, scene, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    killed = tmp_path / f".labels.tif.{child.pid}.x1y2z3.tmp"  # its writer has ended
    live = tmp_path / f".labels.tif.{os.getppid()}.a1b2c3.tmp"  # a running writer's
    for path in (killed, live):
        path.write_bytes(b"partial GeoTIFF")
    assert predict(finished_run, scene, tmp_path / "labels.tif") == 0
    assert not killed.exists() and live.exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(io.TEMPORARY)] == [live]
