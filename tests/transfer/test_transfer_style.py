"""`facegan transfer style`: the command's losses, optimiser, batching, colour preservation, outputs and bad
input, on real faces (../shared/data/celebahq-sample) and real paintings (../shared/data/styles) through a
random-initialised VGG19 in torchvision's format. Fast tests run at 32 px; the 128 px, 100-step check of the
issue is marked slow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from cli_helpers import invoke_cli
from PIL import Image
from references import nst_reference as ref
from transfer_helpers import STYLES, load_image, vgg_file_fixture  # noqa: F401 (fixture)

from facegan_cli.features.vgg19 import IMAGENET_MEAN, IMAGENET_STD, VGG19Extractor
from facegan_cli.transfer.nst import (
    build_objective,
    fit_style,
    read_contents,
    read_picture,
    resolve_settings,
    rgb_to_yiq,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def face_dir(celebahq_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real faces as 48x48 PNGs (a content folder)."""
    folder = tmp_path_factory.mktemp("faces") / "faces"
    folder.mkdir()
    for path in sorted(celebahq_sample.glob("*.jpg"))[:3]:
        Image.fromarray(load_image(path, 48)).save(folder / f"{path.stem}.png")
    return folder


def _args(vgg: Path, *extra: object) -> list[object]:
    return ["--vgg-weights", vgg, "--device", "cpu", *extra]


def test_steps_0_reports_the_initial_losses_of_the_tutorial(cli_json, vgg_file: Path, face_dir: Path,
                                                            tmp_path: Path) -> None:
    udnie = STYLES / "udnie.jpg"
    doc = cli_json("transfer", "style", "--content", face_dir, "--style", udnie, "--out", tmp_path / "o",
                   "--size", 32, "--steps", 0, *_args(vgg_file))
    assert doc["steps"] == 0 and len(doc["images"]) == 3 and doc["preset"] == "tutorial"
    assert doc["settings"]["batch_size"] == 1  # a CPU's default: one image at a time is faster there
    assert doc["vgg19"]["verified"] is False and len(doc["vgg19"]["sha256"]) == 64
    # The tutorial's own model on the same tensors (the content as facegan resized it, the style likewise).
    contents = read_contents(face_dir, 32, "bilinear")  # the tutorial preset resizes as its image_loader
    painting = fit_style(read_picture(udnie, "--style"), 32, resample="bilinear")
    state = torch.load(vgg_file, weights_only=True)
    with torch.device("meta"):
        cnn = torchvision.models.vgg19(weights=None).features
    cnn.load_state_dict({k[len("features."):]: v for k, v in state.items()}, assign=True)
    for record, (path, content) in zip(doc["images"], contents, strict=True):
        assert record["initial"] == record["final"] and record["input"] == str(path)
        assert record["initial"]["content"] == 0.0  # initialised from the content image
        model, style_losses, content_losses = ref.tutorial_model(cnn.eval(), IMAGENET_MEAN, IMAGENET_STD, painting,
                                                                 content)
        with torch.no_grad():
            style_score, _ = ref.tutorial_scores(model, style_losses, content_losses, content)
        assert record["initial"]["style_total"] == pytest.approx(float(style_score), rel=1e-5)
        assert set(record["initial"]["style"]) == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"}
        saved = np.asarray(Image.open(record["output"]))
        assert saved.shape == (32, 32, 3)
    assert json.loads((tmp_path / "o" / "result.json").read_text())["images"] == doc["images"]


def test_the_tutorial_preset_resizes_as_the_tutorial_and_starts_at_its_losses(
    cli_json, vgg_file: Path, celebahq_sample: Path, tmp_path: Path
) -> None:
    """A 178x218 face (CelebA's aligned size) and candy cropped to the same aspect (the tutorial needs style
    and content of one size) at --size 32: the tutorial's image_loader (transforms.Resize(32) then ToTensor, on
    the PIL images) gives the tensors, its model the losses; the preset's initial losses (from its first
    evaluation) equal them."""
    face_dir = tmp_path / "face"
    face_dir.mkdir()
    with Image.open(sorted(celebahq_sample.glob("*.jpg"))[0]) as img:
        img.convert("RGB").resize((178, 218), Image.Resampling.LANCZOS).save(face_dir / "face.png")
    candy = tmp_path / "candy.png"
    with Image.open(STYLES / "candy.jpg") as img:
        img.convert("RGB").crop((78, 38, 78 + 356, 38 + 436)).save(candy)
    doc = cli_json("transfer", "style", "--content", face_dir, "--style", candy, "--out", tmp_path / "o",
                   "--size", 32, "--steps", 1, *_args(vgg_file))
    loader = torchvision.transforms.Compose([torchvision.transforms.Resize(32), torchvision.transforms.ToTensor()])
    content = loader(Image.open(face_dir / "face.png").convert("RGB")).unsqueeze(0)
    painting = loader(Image.open(candy).convert("RGB")).unsqueeze(0)
    assert tuple(content.shape[-2:]) == (39, 32) and doc["images"][0]["size"] == [32, 39]
    state = torch.load(vgg_file, weights_only=True)
    cnn = torchvision.models.vgg19(weights=None).features
    cnn.load_state_dict({k[len("features."):]: v for k, v in state.items()})
    model, style_losses, content_losses = ref.tutorial_model(cnn.eval(), IMAGENET_MEAN, IMAGENET_STD, painting, content)
    with torch.no_grad():
        style_score, content_score = ref.tutorial_scores(model, style_losses, content_losses, content)
    initial = doc["images"][0]["initial"]
    assert initial["content"] == float(content_score) == 0.0
    assert initial["style_total"] == pytest.approx(float(style_score), rel=1e-5)


@pytest.mark.parametrize("preset", ["tutorial", "gatys", "thesis"])
def test_the_optimiser_lowers_the_style_loss_tenfold(cli_json, vgg_file: Path, celebahq_sample: Path,
                                                     tmp_path: Path, preset: str) -> None:
    face = sorted(celebahq_sample.glob("*.jpg"))[0]
    doc = cli_json("transfer", "style", "--content", face, "--style", STYLES / "candy.jpg", "--out", tmp_path / "o",
                   "--preset", preset, "--size", 32, "--steps", 30, *_args(vgg_file))
    first, last = doc["images"][0]["initial"], doc["images"][0]["final"]
    assert doc["steps"] == 30
    if preset == "thesis":
        # From white noise, with alpha/beta = 1e-3, the content term dominates at first: the total falls.
        assert doc["settings"]["init"] == "noise" and last["total"] < first["total"] / 10, (first, last)
    else:
        assert last["style_total"] < first["style_total"] / 10, (first, last)
        assert last["total"] < first["total"]


def test_a_batch_is_optimised_as_its_images_alone(cli_json, vgg_file: Path, face_dir: Path, tmp_path: Path) -> None:
    """Adam treats every pixel on its own, so a batch of content images gives what each gives alone."""
    common = ["--style", STYLES / "mosaic.jpg", "--size", 32, "--steps", 8, "--optimizer", "adam", *_args(vgg_file)]
    # --batch-size 8: one batch even on a CPU, whose default is one image at a time.
    together = cli_json("transfer", "style", "--content", face_dir, "--out", tmp_path / "all", "--batch-size", 8,
                        *common)
    assert together["settings"]["batch_size"] == 8
    first = sorted(face_dir.iterdir())[1]
    alone = cli_json("transfer", "style", "--content", first, "--out", tmp_path / "one", *common)
    assert together["settings"]["lr"] == 0.02
    a = np.asarray(Image.open(tmp_path / "all" / f"{first.stem}.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "one" / f"{first.stem}.png"), dtype=np.int16)
    # Adam's normalised steps turn the last-bit differences between a batched and a single convolution into
    # a level or two after 8 steps.
    assert np.abs(a - b).max() <= 2
    assert together["images"][1]["final"]["total"] == pytest.approx(alone["images"][0]["final"]["total"], rel=1e-3)


def test_colour_preservation_keeps_the_content_chrominance(cli_json, vgg_file: Path, celebahq_sample: Path,
                                                           tmp_path: Path) -> None:
    face = sorted(celebahq_sample.glob("*.jpg"))[2]
    doc = cli_json("transfer", "style", "--content", face, "--style", STYLES / "candy.jpg", "--out", tmp_path / "o",
                   "--size", 32, "--steps", 10, "--preserve-color", "--save-every", 5, *_args(vgg_file))
    content = read_contents(face, 32)[0][1]
    out = torch.from_numpy(np.asarray(Image.open(doc["images"][0]["output"]), dtype=np.float32) / 255).permute(2, 0, 1)
    chroma_out, chroma_in = rgb_to_yiq(out[None])[:, 1:], rgb_to_yiq(content)[:, 1:]
    luma_out, luma_in = rgb_to_yiq(out[None])[:, :1], rgb_to_yiq(content)[:, :1]
    # The colours are the content's (up to clamping and 8-bit rounding); the luminance was restyled.
    assert (chroma_out - chroma_in).abs().mean() < 0.01
    assert (luma_out - luma_in).abs().mean() > 3 * (chroma_out - chroma_in).abs().mean()
    assert sorted(p.name for p in (tmp_path / "o" / "steps").iterdir()) == [f"{face.stem}-00005.png",
                                                                           f"{face.stem}-00010.png"]


def test_blended_styles_and_overrides(cli_json, vgg_file: Path, celebahq_sample: Path, tmp_path: Path) -> None:
    face = sorted(celebahq_sample.glob("*.jpg"))[3]
    base = ["--content", face, "--size", 32, "--steps", 0, "--preset", "gatys", *_args(vgg_file)]
    one = cli_json("transfer", "style", *base, "--style", STYLES / "udnie.jpg", "--out", tmp_path / "a")
    two = cli_json("transfer", "style", *base, "--style", STYLES / "udnie.jpg", "--style", STYLES / "candy.jpg",
                   "--style-blend", "1,0", "--out", tmp_path / "b")
    # A blend that gives all weight to the first style is that style alone.
    assert two["images"][0]["initial"]["style_total"] == pytest.approx(one["images"][0]["initial"]["style_total"],
                                                                       rel=1e-5)
    doc = cli_json("transfer", "style", *base, "--style", STYLES / "udnie.jpg", "--out", tmp_path / "c",
                   "--style-layers", "conv1_1,conv2_1", "--content-layers", "conv3_2", "--pool", "avg",
                   "--style-weight", 1, "--init", "noise")
    settings = doc["settings"]
    assert settings["style_layers"] == ["conv1_1", "conv2_1"] and settings["pool"] == "avg"
    assert settings["layer_weights"] == [1 / 64**2, 1 / 128**2]  # gatys's 1/C^2 rule for the layers named
    assert doc["images"][0]["initial"]["content"] > 0  # from noise


def _fails(cli, *args: object) -> str:
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1  # one paragraph
    return result.stderr


def test_bad_input_is_one_paragraph_and_leaves_nothing(cli, vgg_file: Path, face_dir: Path, non_faces: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    ok_style = STYLES / "udnie.jpg"
    base = ["transfer", "style", "--out", out, "--size", 32, "--steps", 2, *_args(vgg_file)]
    not_image = tmp_path / "notes.txt"
    not_image.write_text("not an image")
    fake_jpg = tmp_path / "fake.jpg"
    fake_jpg.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert "fake.jpg cannot be used as an image" in _fails(cli, *base, "--content", face_dir, "--style", fake_jpg)
    assert "does not exist" in _fails(cli, *base, "--content", face_dir, "--style", tmp_path / "missing.jpg")
    assert "content" in _fails(cli, *base, "--content", not_image, "--style", ok_style).lower()
    # A content folder with a broken file: named, nothing written.
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in sorted(face_dir.iterdir())[:2]:
        (broken / p.name).write_bytes(p.read_bytes())
    (broken / "zz-truncated.png").write_bytes((face_dir / sorted(p.name for p in face_dir.iterdir())[0])
                                              .read_bytes()[:200])
    message = _fails(cli, *base, "--content", broken, "--style", ok_style)
    assert "zz-truncated.png" in message and "1 of the 3 content images" in message
    # The thesis's E_l needs a style of the content's size: a non-square painting at a square face is refused.
    message = _fails(cli, *base, "--content", face_dir, "--style", STYLES / "mosaic.jpg", "--preset", "thesis")
    assert "another size" in message
    # Weights with the wrong hash under the official name.
    official = tmp_path / "vgg19-dcbb9e9d.pth"
    official.write_bytes(b"\0" * 1024)
    assert "SHA-256" in _fails(cli, "transfer", "style", "--out", out, "--content", face_dir, "--style", ok_style,
                               "--vgg-weights", official, "--device", "cpu")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging folder left behind
    # Option values that cannot work, with the option named (library checks): bad numbers (a wrong count, out
    # of range) are usage errors, exit 2; a name that is not a choice, exit 1.
    for bad_number in (["--layer-weights", "1,2"], ["--batch-size", 0]):
        usage = cli(*base, "--content", face_dir, "--style", ok_style, *bad_number)
        assert usage.exit_code == 2 and bad_number[0] in usage.stderr and "Traceback" not in usage.output
    assert "--init" in _fails(cli, *base, "--content", face_dir, "--style", ok_style, "--init", "zeros")
    assert "--style-layers" in _fails(cli, *base, "--content", face_dir, "--style", ok_style,
                                      "--style-layers", "conv9_9")
    # An --out that is a folder of the user's own files is never replaced, even with --force.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    assert "not empty" in _fails(cli, *base[:2], "--out", mine, "--content", face_dir, "--style", ok_style,
                                 *base[4:])
    assert (mine / "keep.txt").exists()
    # A non-face photo is just a picture: it works.
    animal = sorted(non_faces.glob("*.jpg"))[0]
    assert cli(*base, "--content", animal, "--style", ok_style).exit_code == 0


@pytest.mark.slow
def test_style_loss_falls_tenfold_in_100_steps_at_128px(cli_json, vgg_file: Path, celebahq_sample: Path,
                                                        tmp_path: Path) -> None:
    """The issue's check: real faces, real styles, 128 px on the CPU, 100 steps (L-BFGS evaluations) of the
    default preset. The content loss stays bounded: the result stays closer to the content than the style
    image itself is (the content loss of the painting in the face's place)."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in sorted(celebahq_sample.glob("*.jpg"))[:2]:
        Image.fromarray(load_image(path, 128)).save(faces / f"{path.stem}.png")
    settings = resolve_settings("tutorial", size=128)
    extractor = VGG19Extractor(vgg_file)
    for name in ("candy.jpg", "udnie.jpg"):
        doc = cli_json("transfer", "style", "--content", faces, "--style", STYLES / name, "--out", tmp_path / name,
                       "--size", 128, "--steps", 100, *_args(vgg_file))
        painting = torch.from_numpy(load_image(STYLES / name, 128).copy()).permute(2, 0, 1)[None].float() / 255
        contents = torch.cat([t for _, t in read_contents(faces, 128)])
        objective, _ = build_objective(extractor, settings, contents, [fit_style(read_picture(STYLES / name,
                                                                                  "--style"), 128)])
        painting_content = objective.measure(painting.expand_as(contents)).content
        for i, record in enumerate(doc["images"]):
            first, last = record["initial"], record["final"]
            print(f"{name} {Path(record['input']).name}: style {first['style_total']:.4g} -> "
                  f"{last['style_total']:.4g} ({first['style_total'] / last['style_total']:.0f}x), content "
                  f"{first['content']:.4g} -> {last['content']:.4g} (painting in its place: "
                  f"{float(painting_content[i]):.4g}); {doc['seconds']:.0f} s for the batch of 2")
            assert last["style_total"] < first["style_total"] / 10
            assert np.isfinite(last["content"]) and last["content"] < float(painting_content[i])


def test_lbfgs_takes_a_batch_in_any_memory_layout(vgg_file: Path, celebahq_sample: Path) -> None:
    """Images decoded as H x W x C and permuted are channels_last in memory: L-BFGS (which flattens the
    gradient with .view) still optimises them, for exactly the evaluations asked."""
    from transfer_helpers import faces, style

    from facegan_cli.transfer.nst import transfer_batch

    x = faces(celebahq_sample, 2, 32)
    assert not x.is_contiguous()
    result = transfer_batch(VGG19Extractor(vgg_file), resolve_settings("tutorial", steps=3), x, [style("candy.jpg", 32)])
    assert result.evaluations == 3 and result.images.shape == x.shape
    assert result.final.record(1)["total"] < result.initial.record(1)["total"]


def test_missing_weights_without_network_and_content_from_stdin(cli, vgg_file: Path, face_dir: Path,
                                                                tmp_path: Path, monkeypatch) -> None:
    import urllib.request


    monkeypatch.setenv("FACEGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", offline)  # every opener, urlopen's included
    result = cli("transfer", "style", "--content", face_dir, "--style", STYLES / "udnie.jpg", "--out", tmp_path / "o",
                 "--device", "cpu")
    assert result.exit_code == 1 and not (tmp_path / "o").exists()
    for part in ("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                 "facegan weights import vgg19"):
        assert part in result.stderr
    # Paths on stdin ('-'), as `ls *.png | facegan transfer style --content - ...`.
    listed = "\n".join(str(p) for p in sorted(face_dir.iterdir())[:2]) + "\n"
    piped = invoke_cli(["transfer", "style", "--content", "-", "--style", str(STYLES / "udnie.jpg"),
                                     "--out", str(tmp_path / "piped"), "--size", "32", "--steps", "0",
                                     "--vgg-weights", str(vgg_file), "--device", "cpu", "--json", "--quiet"],
                               input=listed)
    assert piped.exit_code == 0, piped.output
    assert [r["input"] for r in json.loads(piped.stdout)["images"]] == listed.split()
