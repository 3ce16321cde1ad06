"""Face alignment speed: facegan's prepare (all cores) against NVIDIA's FFHQ procedure run as its script
runs it (one image at a time, one process, PIL; tests/references/align_reference.py), on the same inputs with
the same outputs, in one run.

    nice -n 5 .venv/bin/python benchmarks/bench_align.py --n 46 --size 1024 --transform-size 4096 --interleaved 6

1. Landmarks are found once per sample face with facegan's dlib backend (not timed) and written, rounded
   to integers, as a CelebA in-the-wild tree (img_celeba/ links to the sample files, Anno/
   list_landmarks_celeba.txt), so both sides do only the crop work: decode, quad, shrink, crop, reflect
   padding with blur and median blend, quad transform at --transform-size, antialiased reduction.
2. Reference: for each image, PIL decode, `reference_quad` of its 5 points, `reference_align` (FFHQ's
   shrink rule relative to the output size); the outputs are kept in memory (not saved as PNG, which the
   script does: that is left out of its time, in its favour).
3. facegan: `facegan prepare celeba-hq --landmarks celeba --align ffhq` on that tree, as a subprocess
   (interpreter start, worker start and writing the prepared dataset included), --workers = all CPUs.
4. The outputs are compared image by image (max and mean absolute difference, PSNR) and the rates and
   their ratio printed; --json writes them to a file. --one-worker adds facegan with --workers 1.
5. Context for shared machines: the load average, and how many cores `--workers` processes actually get
   (a pure-Python loop timed alone and in `--workers` processes at once) at the start and the end; and,
   with --interleaved K, CPU seconds per image of the reference and of facegan's worker function in this
   one process, alternating image by image over K images (a ratio the machine's other load hardly moves).
With --detect, also the detecting path: `facegan prepare faces --landmarks dlib --align ffhq` on a
folder of the same images, against a single-process loop of plain dlib (HOG detector without
upsampling, 68-point predictor: what user scripts around the FFHQ procedure run) + the reference crop.
facegan's dlib backend does more per face (CNN confirmation, refinement over jittered and mirrored
boxes), so that ratio compares different detection work; the outputs are compared for information.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's facegan_cli, and tests/references

from references.align_reference import reference_align, reference_quad  # noqa: E402

from facegan_cli.core.parallel import default_workers  # noqa: E402
from facegan_cli.data.prepared import PreparedDataset  # noqa: E402
from facegan_cli.prepare import celeba  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "celebahq-sample"


def find_landmarks(files: list[Path], cache: Path) -> dict[str, list[list[float]]]:
    """68 dlib points per file (facegan's backend), cached in `cache` between runs."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    missing = [f for f in files if f.name not in known]
    if missing:
        from facegan_cli.align import dlib_backend

        detector = dlib_backend.shared()
        for path in missing:
            faces = detector.detect(np.asarray(Image.open(path).convert("RGB")))
            if len(faces) != 1:
                raise SystemExit(f"{path}: expected one face, found {len(faces)}")
            known[path.name] = faces[0].points.tolist()
        cache.write_text(json.dumps(known))
    return {f.name: known[f.name] for f in files}


def five_integer_points(points68: list[list[float]]) -> np.ndarray:
    """CelebA's 5 points (eye centres, nose tip, mouth corners) rounded as list_landmarks_celeba.txt."""
    lm = np.asarray(points68, dtype=np.float64)
    five = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])
    return np.rint(five).astype(np.int64)


def write_tree(root: Path, files: list[Path], points: dict[str, np.ndarray]) -> list[str]:
    """A CelebA in-the-wild tree whose images are links to the sample files; returns the names in order."""
    images = root / celeba.WILD_DIR
    images.mkdir(parents=True, exist_ok=True)
    (root / "Anno").mkdir(exist_ok=True)
    names, rows = [], []
    for k, path in enumerate(files):
        name = f"{k + 1:06d}.jpg"
        link = images / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.resolve())
        names.append(name)
        rows.append(name + " " + "".join(f"{int(v):5d}" for v in points[path.name].reshape(-1)))
    header = " ".join(celeba.LANDMARK_NAMES)
    (root / "Anno" / celeba.LANDMARKS_FILE).write_text(f"{len(rows)}\n{header}\n" + "\n".join(rows) + "\n")
    return names


def run_reference(
    paths: list[Path], landmarks: list[np.ndarray], size: int, transform: int
) -> tuple[float, float, list]:
    """(wall seconds, CPU seconds, outputs) of the reference over every image."""
    outputs = []
    start, cpu = time.perf_counter(), time.process_time()
    for path, lm in zip(paths, landmarks):
        image = Image.open(path).convert("RGB")
        outputs.append(np.asarray(reference_align(image, reference_quad(lm), size, transform, size)))
    return time.perf_counter() - start, time.process_time() - cpu, outputs


def run_facegan(args: list[str]) -> tuple[float, dict]:
    command = [str(Path(sys.executable).parent / "facegan"), *args, "--json", "--quiet", "--force"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, json.loads(done.stdout)


def _burn(_: int) -> None:
    total = 0
    for i in range(10_000_000):
        total += i


def effective_cores(workers: int) -> float:
    """How many cores `workers` processes get right now: workers x (time of one burn alone) / (time of
    `workers` burns at once). On a machine shared with other work it is less than `workers`."""
    import multiprocessing

    timings = []
    for count in (1, workers):
        start = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(count) as pool:
            pool.map(_burn, range(count))
        timings.append(time.perf_counter() - start)
    return workers * timings[0] / timings[1]


def interleaved_cpu(
    paths: list[Path], landmarks: list[np.ndarray], size: int, transform: int
) -> dict[str, float]:
    """CPU seconds per image of each side in this one process, alternating image by image (so both see
    the same machine load): the reference, and the function facegan's workers run (OpenCV on one
    thread, as in a worker)."""
    import cv2

    from facegan_cli.align.landmarks import Face
    from facegan_cli.prepare.align_job import AlignTask, align_input
    from facegan_cli.prepare.aligned import make_job

    cv2.setNumThreads(1)
    job = make_job({"align": "ffhq", "size": size, "transform_size": transform, "landmarks": "celeba"})
    # One untimed round first: lazy imports and first-call set-up of either side are not per-image costs.
    reference_align(Image.open(paths[0]).convert("RGB"), reference_quad(landmarks[0]), size, transform, size)
    align_input(job, AlignTask(str(paths[0]), 0, (Face.from_points(landmarks[0]),)))
    reference = ours = 0.0
    for k, (path, lm) in enumerate(zip(paths, landmarks)):
        start = time.process_time()
        image = Image.open(path).convert("RGB")
        reference_align(image, reference_quad(lm), size, transform, size)
        middle = time.process_time()
        align_input(job, AlignTask(str(path), k, (Face.from_points(lm),)))
        ours += time.process_time() - middle
        reference += middle - start
    return {
        "images": len(paths),
        "reference_cpu_s_per_img": reference / len(paths),
        "facegan_cpu_s_per_img": ours / len(paths),
        "ratio": reference / ours,
    }


def compare(ours: np.ndarray, theirs: list[np.ndarray]) -> dict:
    diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(ours, theirs)]
    mses = [float(np.mean(d.astype(np.float64) ** 2)) for d in diffs]
    psnrs = [float("inf") if m == 0 else 10 * np.log10(255.0**2 / m) for m in mses]
    return {
        "max_abs_diff": int(max(int(d.max()) for d in diffs)),
        "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
        "min_psnr_db": float(min(psnrs)),
    }


def plain_dlib_reference(paths: list[Path], size: int, transform: int) -> tuple[float, list]:
    """One process: dlib HOG (no upsampling) + 68-point predictor, largest face, reference crop."""
    import dlib

    from facegan_cli.align.dlib_backend import PREDICTOR_FILE, models_dir

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models_dir() / PREDICTOR_FILE))
    outputs = []
    start = time.perf_counter()
    for path in paths:
        image = Image.open(path).convert("RGB")
        pixels = np.asarray(image)
        rects = detector(pixels, 0)
        if not rects:
            outputs.append(None)
            continue
        rect = max(rects, key=lambda r: r.width() * r.height())
        lm = np.array([[p.x, p.y] for p in predictor(pixels, rect).parts()], dtype=np.float64)
        outputs.append(np.asarray(reference_align(image, reference_quad(lm), size, transform, size)))
    return time.perf_counter() - start, outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", type=Path, default=SAMPLE, help="Folder of face photos (one face each).")
    parser.add_argument("--n", type=int, default=16, help="How many of its images (sorted) to align.")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--transform-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--detect", action="store_true", help="Also time the dlib detection path.")
    parser.add_argument(
        "--one-worker", action="store_true", help="Also time facegan's crop path with --workers 1."
    )
    parser.add_argument(
        "--interleaved",
        type=int,
        default=0,
        help="Also compare CPU seconds per image in one process on this many images, alternating.",
    )
    parser.add_argument("--work", type=Path, help="Working folder (default: a temporary one).")
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-align-"))
    work.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in args.src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.n]
    found = find_landmarks(files, work / "landmarks68.json")
    points = {name: five_integer_points(lm) for name, lm in found.items()}
    names = write_tree(work / "celeba", files, points)
    size, transform = args.size, args.transform_size
    results: dict = {
        "device": f"CPU only, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        "images": len(files),
        "size": size,
        "transform_size": transform,
        "workers": args.workers,
        "load_average_at_start": os.getloadavg(),
        "effective_cores_at_start": effective_cores(args.workers),
    }

    def crop_args(out: str, workers: int) -> list[str]:
        return [
            "prepare", "celeba-hq", "--src", str(work / "celeba"), "--out", str(work / out),
            "--landmarks", "celeba", "--align", "ffhq", "--size", str(size), "--transform-size",
            str(transform), "--no-levels", "--attrs", "none", "--workers", str(workers),
        ]  # fmt: skip

    ref_seconds, ref_cpu, ref_out = run_reference(files, [points[f.name] for f in files], size, transform)
    ours_seconds, doc = run_facegan(crop_args("facegan", args.workers))
    data = PreparedDataset.open(work / "facegan")
    assert data.names == names and doc["rejected"] == 0, doc
    quads = np.stack([reference_quad(points[f.name]) for f in files])
    results["crop"] = {
        "reference_s": ref_seconds,
        "reference_cpu_s": ref_cpu,
        "reference_img_per_s": len(files) / ref_seconds,
        "facegan_s": ours_seconds,
        "facegan_img_per_s": len(files) / ours_seconds,
        "speedup": ref_seconds / ours_seconds,
        "max_quad_diff_px": float(np.abs(data.extra("quads") - quads).max()),
        **compare(np.asarray(data.images()), ref_out),
    }
    if args.one_worker:
        one_seconds, _ = run_facegan(crop_args("facegan-1", 1))
        one = PreparedDataset.open(work / "facegan-1")
        assert np.array_equal(np.asarray(one.images()), np.asarray(data.images()))  # same bytes
        results["crop"].update(facegan_1_worker_s=one_seconds, speedup_1_worker=ref_seconds / one_seconds)

    if args.interleaved:
        chosen = files[: args.interleaved]
        results["crop"]["one_process_cpu"] = interleaved_cpu(
            chosen, [points[f.name] for f in chosen], size, transform
        )

    if args.detect:
        folder = work / "photos"
        folder.mkdir(exist_ok=True)
        for name, path in zip(names, files):
            link = folder / name
            if not link.is_symlink():
                link.symlink_to(path.resolve())
        plain_seconds, plain_out = plain_dlib_reference(files, size, transform)
        det_seconds, det_doc = run_facegan(
            [
                "prepare", "faces", "--src", str(folder), "--out", str(work / "facegan-dlib"),
                "--landmarks", "dlib", "--align", "ffhq", "--size", str(size), "--transform-size",
                str(transform), "--workers", str(args.workers),
            ]
        )  # fmt: skip
        detected = PreparedDataset.open(work / "facegan-dlib")
        pairs = [(detected.images()[k], out) for k, out in enumerate(plain_out) if out is not None]
        results["detect"] = {
            "plain_dlib_reference_s": plain_seconds,
            "plain_dlib_reference_img_per_s": len(files) / plain_seconds,
            "plain_dlib_found": sum(out is not None for out in plain_out),
            "facegan_s": det_seconds,
            "facegan_img_per_s": len(files) / det_seconds,
            "facegan_found": det_doc["count"],
            "speedup": plain_seconds / det_seconds,
            **(
                {"vs_plain_dlib": compare(np.stack([a for a, _ in pairs]), [b for _, b in pairs])}
                if pairs
                else {}
            ),
        }

    results["load_average_at_end"] = os.getloadavg()
    results["effective_cores_at_end"] = effective_cores(args.workers)
    print(json.dumps(results, indent=2))
    crop = results["crop"]
    print(
        f"crop path, {len(files)} images {size}px (transform {transform}): reference "
        f"{crop['reference_img_per_s']:.2f} img/s, facegan ({args.workers} workers) "
        f"{crop['facegan_img_per_s']:.2f} img/s: {crop['speedup']:.2f}x; outputs max abs diff "
        f"{crop['max_abs_diff']}, mean {crop['mean_abs_diff']:.3f}, min PSNR {crop['min_psnr_db']:.1f} dB; "
        f"{args.workers} processes got {results['effective_cores_at_start']:.2f} / "
        f"{results['effective_cores_at_end']:.2f} cores (start / end)",
        file=sys.stderr,
    )
    if "detect" in results:
        det = results["detect"]
        print(
            f"dlib detection path: plain dlib + reference {det['plain_dlib_reference_img_per_s']:.2f} img/s, "
            f"facegan {det['facegan_img_per_s']:.2f} img/s: {det['speedup']:.2f}x",
            file=sys.stderr,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
