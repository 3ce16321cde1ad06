"""Issue 10: never lose a user's files. `--force` replaces only what facegan wrote and marked as its own,
an output never replaces (or lies inside) its input, two prepares never write one folder, and outputs
get the permissions the umask gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from train_helpers import make_run
from typer.testing import Result

from facegan_cli.core.errors import FaceganError
from facegan_cli.core.lock import FolderLock, is_locked
from facegan_cli.core.outputs import FILES_RECORD, MARKER, read_marker
from facegan_cli.data.prepared import PreparedDataset, PreparedWriter
from facegan_cli.evaluation.turing import make_sheet
from facegan_cli.prepare.export import ZIP_TAG
from facegan_cli.prepare.synthetic import write_synthetic

Cli = Callable[..., Result]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name -> bytes): what must survive a refused command intact."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _own_pngs(folder: Path, names: list[str], seed: int = 0) -> Path:
    """A user's folder of their own small PNGs (no facegan marker)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _prepare_args(src: Path, out: Path, *extra: object) -> tuple[object, ...]:
    return (
        "prepare",
        "celeba",
        "--src",
        src,
        "--out",
        out,
        "--size",
        8,
        "--limit",
        3,
        "--workers",
        1,
        "--attrs",
        "Male",
        *extra,
    )


@pytest.fixture(scope="module")
def prepared(prepare_synthetic: Callable[..., Path]) -> Path:
    return prepare_synthetic("celeba-64", size=8, attrs="Male")


# ----- prepare export ------------------------------------------------------------------------------


def test_export_force_refuses_a_folder_of_the_users_own_pngs(
    cli: Cli, prepared: Path, tmp_path: Path
) -> None:
    # The scenario: a folder that holds only PNGs (even ones named like an export) is the user's.
    own = _own_pngs(tmp_path / "mine", ["img00000000.png", "img00000001.png", "holiday.png"])
    before = _snapshot(own)
    result = cli("prepare", "export", prepared, "--out", own, "--format", "png", "--force", "--workers", 1)
    assert result.exit_code == 1, result.output
    assert "not created by facegan" in result.stderr and str(own) in result.stderr
    assert "Traceback" not in result.output
    assert _snapshot(own) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left beside it


def test_export_into_its_own_source_is_refused(cli: Cli, tmp_path: Path) -> None:
    # DIR == SRC used to delete the source (all PNGs), then crash reading it.
    src = _own_pngs(tmp_path / "faces", ["a.png", "b.png", "c.png"])
    before = _snapshot(src)
    for out in (src, src / "export", tmp_path):
        result = cli("prepare", "export", src, "--out", out, "--format", "png", "--force", "--workers", 1)
        assert result.exit_code == 1, (out, result.output)
        assert "input DATASET" in result.stderr and "Traceback" not in result.output
    for out in (src / "x.zip", src / "sub" / "x.zip"):
        zipped = cli("prepare", "export", src, "--out", out, "--format", "zip", "--force", "--workers", 1)
        assert zipped.exit_code == 1 and "lies inside the input DATASET" in zipped.stderr
    assert _snapshot(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]


def test_export_into_a_prepared_source_is_refused(cli: Cli, prepared: Path) -> None:
    result = cli("prepare", "export", prepared, "--out", prepared, "--force", "--workers", 1)
    assert result.exit_code == 1 and "is the input DATASET" in result.stderr
    assert PreparedDataset.open(prepared).count == 30


def test_export_force_replaces_an_earlier_export(cli: Cli, prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    assert cli("prepare", "export", prepared, "--out", out, "--workers", 1).exit_code == 0
    assert read_marker(out)["kind"] == "png-export"
    assert len(list(out.glob("img*.png"))) == 30
    again = cli("prepare", "export", prepared, "--out", out, "--split", "test", "--force", "--workers", 1)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "dataset.json",
        "img00000000.png",
        "img00000001.png",
        "img00000002.png",
    ]


def test_zip_force_replaces_only_a_facegan_zip(cli: Cli, prepared: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine.zip"
    with zipfile.ZipFile(foreign, "w") as archive:  # the user's own zip, in the very layout facegan writes
        archive.writestr("00000/img00000000.png", b"my photo")
        archive.writestr("dataset.json", "{}")
    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("not a zip at all")
    for path in (foreign, not_a_zip):
        before = path.read_bytes()
        result = cli(
            "prepare", "export", prepared, "--out", path, "--format", "zip", "--force", "--workers", 1
        )
        assert result.exit_code == 1, result.output
        assert "does not list it as a file facegan wrote" in result.stderr and "Traceback" not in result.output
        assert path.read_bytes() == before

    ours = tmp_path / "ours.zip"
    assert cli("prepare", "export", prepared, "--out", ours, "--format", "zip", "--workers", 1).exit_code == 0
    with zipfile.ZipFile(ours) as archive:
        assert archive.comment.startswith(ZIP_TAG) and len(archive.namelist()) == 31
    refused = cli("prepare", "export", prepared, "--out", ours, "--format", "zip", "--workers", 1)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    replaced = cli(
        "prepare",
        "export",
        prepared,
        "--out",
        ours,
        "--format",
        "zip",
        "--split",
        "test",
        "--force",
        "--workers",
        1,
    )
    assert replaced.exit_code == 0, replaced.output
    with zipfile.ZipFile(ours) as archive:
        assert archive.comment.startswith(ZIP_TAG) and len(archive.namelist()) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILES_RECORD, "mine.zip", "notes.zip", "ours.zip"]


# ----- prepare celeba / celeba-hq / faces: --out against the inputs ---------------------------------


def test_prepare_out_may_not_be_in_or_around_its_source(cli: Cli, tree_copy: Path, tmp_path: Path) -> None:
    before = _snapshot(tree_copy)
    for out in (tree_copy, tree_copy / "prepared", tree_copy.parent):
        result = cli(*_prepare_args(tree_copy, out, "--force"))
        assert result.exit_code == 1, (out, result.output)
        assert "the input --src" in result.stderr and "Traceback" not in result.output
    images = tree_copy / "img_align_celeba"
    result = cli(*_prepare_args(tmp_path / "elsewhere", images / "ds", "--images", images))
    assert result.exit_code == 1 and "the input --images" in result.stderr
    assert _snapshot(tree_copy) == before


def test_aligned_prepares_refuse_an_out_inside_an_input(cli: Cli, tmp_path: Path) -> None:
    photos = _own_pngs(tmp_path / "photos", ["a.png"])
    faces = cli(
        "prepare", "faces", "--src", photos, "--out", photos / "aligned", "--align", "none", "--size", 8
    )
    assert faces.exit_code == 1 and "lies inside the input --src" in faces.stderr
    mapping_dir = tmp_path / "maps"
    mapping_dir.mkdir()
    (mapping_dir / "map.txt").write_text("idx orig_idx orig_file\n0 0 000001.jpg\n")
    for option, path, out in (
        ("--src", photos, photos),
        ("--mapping", mapping_dir / "map.txt", mapping_dir),
    ):
        args = ["prepare", "celeba-hq", "--src", photos, "--out", out, "--size", 8, "--transform-size", 8]
        if option == "--mapping":
            args += ["--mapping", path]
        result = cli(*args)
        assert result.exit_code == 1 and f"the input {option}" in result.stderr, result.output
    assert _snapshot(photos).keys() == {"a.png"} and sorted(p.name for p in mapping_dir.iterdir()) == [
        "map.txt"
    ]


# ----- sample, eval turing, prepare synthetic -------------------------------------------------------


def test_sample_force_refuses_a_folder_of_the_users_numbered_pngs(cli: Cli, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    own = _own_pngs(tmp_path / "mine", ["0000.png", "0001.png"])
    before = _snapshot(own)
    result = cli("sample", "--ckpt", run, "--n", 2, "--out", own, "--force", "--device", "cpu")
    assert result.exit_code == 1 and "not created by facegan" in result.stderr, result.output
    assert _snapshot(own) == before
    ours = tmp_path / "samples"
    assert cli("sample", "--ckpt", run, "--n", 3, "--out", ours, "--device", "cpu").exit_code == 0
    assert read_marker(ours)["kind"] == "samples"
    assert cli("sample", "--ckpt", run, "--n", 2, "--out", ours, "--force", "--device", "cpu").exit_code == 0
    assert sorted(p.name for p in ours.iterdir()) == [MARKER, "0000.png", "0001.png"]


@pytest.mark.unit
def test_turing_force_refuses_a_folder_of_the_users_own_files(tmp_path: Path) -> None:
    real = _own_pngs(tmp_path / "real", ["r1.png", "r2.png"], seed=1)
    fake = _own_pngs(tmp_path / "fake", ["f1.png", "f2.png"], seed=2)
    own = _own_pngs(tmp_path / "mine", ["001.png", "002.png", "sheet.png"], seed=3)
    (own / "answers.txt").write_text("my answers\n")
    before = _snapshot(own)
    with pytest.raises(FaceganError, match="not created by facegan"):
        make_sheet(real, fake, 1, own, key=tmp_path / "k.json", force=True)
    assert _snapshot(own) == before and not (tmp_path / "k.json").exists()
    sheet = make_sheet(real, fake, 2, tmp_path / "sheet", key=tmp_path / "k2.json")
    assert read_marker(sheet.folder)["kind"] == "turing-sheet"
    again = make_sheet(real, fake, 1, tmp_path / "sheet", key=tmp_path / "k2.json", force=True)
    assert len(again.images) == 2 and not (tmp_path / "sheet" / "003.png").exists()


def test_synthetic_force_refuses_a_forged_synthetic_json(cli: Cli, tmp_path: Path) -> None:
    # synthetic.json used to be the proof of ownership; anyone can write one.
    own = _own_pngs(tmp_path / "mine", ["000001.png", "000002.png"])
    (own / "synthetic.json").write_text("{}")
    before = _snapshot(own)
    result = cli("prepare", "synthetic", "--out", own, "--n", 2, "--layout", "folder", "--size", 8, "--force")
    assert result.exit_code == 1 and "not created by facegan" in result.stderr, result.output
    assert _snapshot(own) == before
    ours = tmp_path / "syn"
    write_synthetic(ours, n=3, layout="folder", size=8)
    assert read_marker(ours)["kind"] == "synthetic"
    write_synthetic(ours, n=2, seed=1, force=True)  # another layout: the earlier set is replaced entirely
    assert sorted(p.name for p in ours.iterdir()) == [
        MARKER,
        "Anno",
        "Eval",
        "img_align_celeba",
        "img_celeba",
        "synthetic.json",
    ]


# ----- prepared datasets: the marker, old datasets, the lock ----------------------------------------


def _writer(out: Path, **kwargs: object) -> PreparedWriter:
    return PreparedWriter(out, resolution=4, plan={"t": 1}, total_inputs=3, **kwargs)


def _feed(writer: PreparedWriter) -> None:
    rng = np.random.default_rng(0)
    for i in range(writer.inputs_done, 3):
        writer.add(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), f"{i}.jpg")


def test_forged_manifest_or_progress_does_not_let_force_delete(
    cli: Cli, synthetic_tree: Path, tmp_path: Path
) -> None:
    for name in ("manifest.json", "progress.json"):
        project = tmp_path / name.split(".")[0]
        project.mkdir()
        (project / name).write_text("{}")
        (project / "names.txt").write_text("my list of names\n")
        (project / "images-8.u8").write_bytes(b"my data")
        (project / "labels.npy").write_bytes(b"my labels")
        before = _snapshot(project)
        result = cli(*_prepare_args(synthetic_tree, project, "--force"))
        assert result.exit_code == 1, result.output
        assert MARKER in result.stderr and "even with --force" in result.stderr
        assert "Traceback" not in result.output
        assert _snapshot(project) == before


@pytest.mark.unit
def test_marker_is_written_before_any_content(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    writer = _writer(out)
    assert writer.open() == "fresh"
    assert read_marker(out)["kind"] == "prepared"
    assert writer.count == 0 and not (out / "manifest.json").exists()
    writer.close()


def test_datasets_of_older_versions_stay_readable_and_resumable(tmp_path: Path) -> None:
    done = tmp_path / "done"
    writer = _writer(done)
    writer.open()
    _feed(writer)
    writer.finish({})
    (done / MARKER).unlink()  # as an older facegan left it
    assert PreparedDataset.open(done).count == 3
    with pytest.raises(FaceganError, match="even with --force"):
        _writer(done, force=True).open()
    assert PreparedDataset.open(done).count == 3 and not (done / MARKER).exists()

    cut = tmp_path / "cut"
    writer = _writer(cut)
    writer.open()
    _feed(writer)
    writer.close()  # interrupted before finish()
    (cut / MARKER).unlink()
    with pytest.raises(FaceganError, match="even with --force"):
        _writer(cut, force=True).open()
    resumed = _writer(cut, resume=True)
    assert resumed.open() == "resumed" and resumed.inputs_done == 3
    assert resumed.finish({})["count"] == 3
    assert read_marker(cut)["kind"] == "prepared"  # resumed by this version: marked as facegan's now
    assert PreparedDataset.open(cut).count == 3


@pytest.mark.unit
def test_a_marked_dataset_of_another_kind_is_not_written(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"kind": "png-export"}))
    (out / "img00000000.png").write_bytes(b"x")
    with pytest.raises(FaceganError, match="png export output"):
        _writer(out, force=True).open()
    assert (out / "img00000000.png").read_bytes() == b"x"


def test_the_writer_holds_the_folder_lock(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    writer = _writer(out)
    writer.open()
    assert is_locked(out)
    with pytest.raises(FaceganError, match=f"in use by process {os.getpid()}"):
        _writer(out, resume=True).open()
    writer.close()
    assert not is_locked(out)
    writer = _writer(out, resume=True)
    writer.open()
    _feed(writer)
    writer.finish({})
    assert not is_locked(out)
    assert _writer(out, resume=True).open() == "complete" and not is_locked(out)


def test_second_prepare_into_a_locked_out_is_refused_naming_the_holder(
    cli: Cli, synthetic_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    assert cli(*_prepare_args(synthetic_tree, out)).exit_code == 0
    before = _snapshot(out)
    holder = FolderLock(out, "prepared dataset").acquire()
    try:
        result = cli(*_prepare_args(synthetic_tree, out, "--force"))
        assert result.exit_code == 1, result.output
        assert f"in use by process {os.getpid()}" in result.stderr and "Traceback" not in result.output
        assert (
            _snapshot(out).keys() == before.keys()
            and (out / "manifest.json").read_bytes() == before["manifest.json"]
        )
    finally:
        holder.release()
    assert cli(*_prepare_args(synthetic_tree, out, "--force")).exit_code == 0


def test_a_lock_held_by_another_process_is_named(cli: Cli, synthetic_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    code = (
        "import sys; from facegan_cli.core.lock import FolderLock; FolderLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); sys.stdin.read()"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "held"
        result = cli(*_prepare_args(synthetic_tree, out))
        assert result.exit_code == 1 and f"in use by process {other.pid}" in result.stderr, result.output
        assert not (out / "manifest.json").exists() and not (out / MARKER).exists()
    finally:
        other.stdin.close()
        other.wait(timeout=30)
    assert cli(*_prepare_args(synthetic_tree, out)).exit_code == 0


# ----- a prepare that rejected every input ----------------------------------------------------------


def test_a_prepare_that_rejected_everything_says_so_later(
    cli: Cli, tree_copy: Path, synthetic_tree: Path, tmp_path: Path
) -> None:
    names = [f"{i:06d}.jpg" for i in range(1, 4)]
    for name in names:
        (tree_copy / "img_align_celeba" / name).write_bytes(b"")
    out = tmp_path / "ds"
    first = cli(*_prepare_args(tree_copy, out))
    assert first.exit_code == 1 and "all 3 inputs were rejected" in first.stderr
    again = cli(*_prepare_args(tree_copy, out))
    assert again.exit_code == 1
    assert "rejected all 3 inputs" in again.stderr and "rejects.tsv" in again.stderr
    assert "interrupted prepare" not in again.stderr
    # The inputs are fixed in place: --resume redoes them all, since nothing was kept.
    for name in names:
        shutil.copy(synthetic_tree / "img_align_celeba" / name, tree_copy / "img_align_celeba" / name)
    resumed = cli(*_prepare_args(tree_copy, out, "--resume", "--json", "--quiet"))
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["count"] == 3 and json.loads(resumed.stdout)["rejected"] == 0


# ----- permissions under the umask -------------------------------------------------------------------


def _modes(root: Path) -> set[tuple[str, int]]:
    """(kind, mode) of every entry under `root` and of `root` itself (a file output: just the file)."""
    entries = [root, *root.rglob("*")] if root.is_dir() else [root]
    return {("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777) for p in entries}


def test_outputs_respect_the_umask(cli: Cli, synthetic_tree: Path, tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        run = make_run(tmp_path / "run")
        outputs = {
            "synthetic": ("prepare", "synthetic", "--out", tmp_path / "syn", "--n", 2),
            "celeba": _prepare_args(synthetic_tree, tmp_path / "ds"),
            "png": ("prepare", "export", tmp_path / "ds", "--out", tmp_path / "png", "--workers", 1),
            "zip": ("prepare", "export", tmp_path / "ds", "--out", tmp_path / "ds.zip", "--format", "zip"),
            "sample": ("sample", "--ckpt", run, "--n", 2, "--out", tmp_path / "samples", "--device", "cpu"),
        }
        for name, args in outputs.items():
            result = cli(*args)
            assert result.exit_code == 0, (name, result.output)
    finally:
        os.umask(old)
    for name in ("syn", "ds", "png", "ds.zip", "samples"):
        modes = _modes(tmp_path / name)
        assert modes <= {("file", 0o664), ("dir", 0o775)}, (name, sorted(modes))
    assert ("dir", 0o775) in _modes(tmp_path / "samples") and ("file", 0o664) in _modes(tmp_path / "ds.zip")


# ----- an --out that cannot be created --------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generator run and two folders of images, for sample and eval turing."""
    root = tmp_path_factory.mktemp("sources")
    return {
        "run": make_run(root / "run"),
        "real": _own_pngs(root / "real", ["r1.png", "r2.png"], seed=1),
        "fake": _own_pngs(root / "fake", ["f1.png", "f2.png"], seed=2),
    }


def _cannot_create_cases(
    root: Path, prepared: Path, synthetic_tree: Path, sources: dict[str, Path]
) -> list[tuple[object, ...]]:
    """Each output command with --out under `root` (a file, or a folder it may not write)."""
    sample = ("sample", "--ckpt", sources["run"], "--n", 2, "--device", "cpu")
    return [
        _prepare_args(synthetic_tree, root / "ds"),
        ("prepare", "export", prepared, "--out", root / "png", "--workers", 1),
        ("prepare", "export", prepared, "--out", root / "x.zip", "--format", "zip", "--workers", 1),
        ("prepare", "synthetic", "--out", root / "syn", "--n", 1),
        (*sample, "--out", root / "samples"),
        (*sample, "--out", root / "grid.png"),
        (
            "eval",
            "turing",
            "--real",
            sources["real"],
            "--fake",
            sources["fake"],
            "--n",
            1,
            "--out",
            root / "sheet",
        ),
    ]


def test_an_out_below_a_file_is_a_user_error(
    cli: Cli, prepared: Path, synthetic_tree: Path, sources: dict[str, Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    for args in _cannot_create_cases(blocker, prepared, synthetic_tree, sources):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "internal error" not in result.stderr and str(blocker) in result.stderr, result.stderr
    assert blocker.read_text() == "mine"


@pytest.mark.unit
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_out_in_a_read_only_folder_is_a_user_error(
    cli: Cli, prepared: Path, synthetic_tree: Path, sources: dict[str, Path], tmp_path: Path
) -> None:
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for args in _cannot_create_cases(locked, prepared, synthetic_tree, sources):
            result = cli(*args)
            assert result.exit_code == 1 and "internal error" not in result.stderr, (args, result.output)
    finally:
        locked.chmod(0o755)
