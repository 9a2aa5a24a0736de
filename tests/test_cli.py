import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nkcodec
from nkcodec.tools.cli import main


def test_encode_decode_info(tmp_path, capsys):
    img = np.zeros((10, 12, 3), np.uint8)
    img[2:5] = 99
    src = tmp_path / "a.png"
    Image.fromarray(img).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "a.nkc"), "--preset", "rle"]) == 0
    assert main(["info", str(tmp_path / "a.nkc")]) == 0
    assert "12x10" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "a.nkc"), "-o", str(tmp_path / "b.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), img)


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.nkc"
    bad.write_bytes(b"NKC\x01garbage")
    assert main(["decode", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nkcodec: error: corrupt stream") and err.count("\n") == 1
    assert main(["encode", str(tmp_path / "missing.png")]) == 1
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["encode", "x.png", "--preset", "nope"])


def test_many_files_in_one_call(tmp_path, capsys):
    """Several inputs share one codec; -o is then a folder; a bad file is reported
    and skipped, the others are still written, and the status says something failed."""
    rng = np.random.default_rng(0)
    srcs = []
    for name in ("a", "b", "c"):
        srcs.append(tmp_path / f"{name}.png")
        Image.fromarray(rng.integers(0, 255, (9, 14, 3), dtype=np.uint8)).save(srcs[-1])
    (tmp_path / "b.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["encode", *map(str, srcs), "-o", str(out), "--preset", "rle"]) == 1
    err = capsys.readouterr().err
    assert "b.png" in err and "1 of 3 files failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.nkc", "c.nkc"]
    assert main(["decode", str(out / "a.nkc"), str(out / "c.nkc")]) == 0  # next to each input
    for name in ("a", "c"):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"{name}.png")), np.asarray(Image.open(tmp_path / f"{name}.png")))
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "sub" / "a.png")
    assert main(["encode", str(srcs[0]), str(tmp_path / "sub" / "a.png"), "-o", str(out)]) == 1
    assert "both be written" in capsys.readouterr().err
    assert main(["encode", str(srcs[0]), str(srcs[2]), "-o", str(srcs[0])]) == 1
    assert "must be a folder" in capsys.readouterr().err
    assert main(["encode", str(srcs[0]), "-o", str(tmp_path / "n.nkc"), "--preset", "near-lossless", "--max-error", "2"]) == 0
    assert main(["decode", str(tmp_path / "n.nkc")]) == 0
    diff = np.asarray(Image.open(tmp_path / "n.png")).astype(int) - np.asarray(Image.open(srcs[0])).astype(int)
    assert np.abs(diff).max() <= 2
    assert main(["encode", str(srcs[0]), "--max-error", "2"]) == 1
    assert "near-lossless only" in capsys.readouterr().err
    assert main(["encode", str(srcs[0]), "--quality", "0"]) == 1  # not silently the default
    assert main(["encode", str(srcs[0]), "-o", str(tmp_path / "s.nkc"), "--max-bytes", "100000"]) == 0
    assert (tmp_path / "s.nkc").stat().st_size <= 100000
    assert main(["encode", str(srcs[0]), "--max-bytes", "10", "--quality", "3"]) == 1
    assert "not both" in capsys.readouterr().err


def test_bench_json(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    stages = {r["stage"]: r for r in res["stages"]}
    for s in ("rle.encode", "rle.decode"):
        assert stages[s]["peer"] == "numpy reference"
        assert stages[s]["throughput"] > 0 and stages[s]["peer_throughput"] > 0
    assert "machine" in res and "end_to_end" in res


def _photo_array(shape, seed=0):
    from .test_learned import photo

    return photo(shape, seed)


def _write_photo(path, h=48, w=64):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    img = np.clip(np.stack([x * 3, y * 4, x + y], -1) + rng.integers(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return img


def test_compare_writes_png(tmp_path):
    _write_photo(tmp_path / "p.png")
    out = tmp_path / "cmp.png"
    assert main(["compare", str(tmp_path / "p.png"), "-o", str(out), "--quality", "3"]) == 0
    with Image.open(out) as im:
        assert im.size[0] > 3 * 48


def test_eval_small_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_photo(folder / "a.png")
    _write_photo(folder / "b.png", 40, 56)
    js, plot = tmp_path / "e.json", tmp_path / "e.png"
    assert main(["eval", str(folder), "--json", str(js), "--plot", str(plot), "--no-paper"]) == 0
    res = json.loads(js.read_text())
    curves = res["curves"]
    assert set(curves) == {"nkcodec", "jpeg", "webp"}
    assert len(curves["nkcodec"]["results"]["bpp"]) == 8
    for c in curves.values():
        assert all(b > 0 for b in c["results"]["bpp"])
        assert len(c["per_image"][str(c["settings"][0])]) == 2
    assert plot.stat().st_size > 1000
    assert "vs_jpeg" in res["bd_rate"]["webp"]
    # a published curve (CompressAI's shape) that is this run's JPEG curve: BD-rate 0 against JPEG, and
    # nkcodec against it equals nkcodec against JPEG
    jpeg = curves["jpeg"]["results"]
    pub = tmp_path / "pub.json"
    pub.write_text(json.dumps({"name": "jpeg-copy", "results": {"bpp": jpeg["bpp"][::-1], "psnr-rgb": jpeg["psnr"][::-1]}}))
    from nkcodec.tools.evaluate import run_eval

    res2 = run_eval(folder, plot_path=tmp_path / "p.png", qualities=[1, 3, 5, 8], paper=False, progress=False, published=[pub])
    assert "jpeg-copy" in res2["published"] and "jpeg-copy" not in res2["curves"]
    assert abs(res2["published_bd_rate"]["jpeg-copy"]["vs_jpeg"]) < 1e-6
    assert abs(res2["bd_rate_vs_published"]["nkcodec"]["jpeg-copy"] - res2["bd_rate"]["nkcodec"]["vs_jpeg"]) < 1e-6
    (tmp_path / "bad.json").write_text('{"name": "x", "results": {"bpp": [1, 2]}}')
    assert main(["eval", str(folder), "--published", str(tmp_path / "bad.json")]) == 1  # before any coding
    assert main(["eval", str(folder), "--lossless", "--published", str(pub)]) == 1


def test_ablation_small_folder(tmp_path):
    from nkcodec.tools.evaluate import run_ablation

    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_photo(folder / "a.png")
    _write_photo(folder / "b.png", 40, 56)
    res = run_ablation(folder, json_path=tmp_path / "a.json", qualities=[1, 4], progress=False)
    assert json.loads((tmp_path / "a.json").read_text())["images"] == 2
    curves = res["curves"]
    for p in ("paper", "scalar-rle", "scalar", "cluster"):
        assert curves[p]["settings"] == [1, 4]
    table = res["model_table"]
    assert list(table) == [1, 4]
    for i, q in enumerate((1, 4)):
        assert table[q]["bpp"] == curves["scalar"]["results"]["bpp"][i]
        assert 0 < table[q]["est_bpp"] < table[q]["bpp"]  # the estimate has no container overhead
    assert set(res["key_cost"]) == {1, 4}
    for nk, plain in res["key_cost"].values():
        assert nk >= plain  # squared keys never take fewer bytes


def test_lossless_small_folder(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_photo(folder / "a.png")
    _write_photo(folder / "b.png", 40, 56)
    assert main(["eval", str(folder), "--lossless", "--json", str(tmp_path / "l.json"), "--plot", str(tmp_path / "l.png")]) == 0
    curves = json.loads((tmp_path / "l.json").read_text())["curves"]
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    pytest.importorskip("imagecodecs", reason="the eval extra is not installed")
    assert set(curves) == {
        "near-lossless",
        "near-lossless-effort-1",
        "near-lossless-effort-2",
        "near-lossless-base6",
        "palette",
        "rle",
        "png",
        "webp-lossless",
        "jpegxl-lossless",
        "jpeg-ls",
    }
    assert curves["jpegxl-lossless"]["results"]["max_err"] == [0]
    assert curves["jpeg-ls"]["settings"] == [0, 1, 2] and curves["jpeg-ls"]["results"]["max_err"] == [0, 1, 2]
    assert len(curves["jpeg-ls"]["per_image"]["1"]) == 2  # a row per image
    nl = curves["near-lossless"]
    assert nl["settings"] == [0, 1, 2, 4]
    assert all(e <= d for e, d in zip(nl["results"]["max_err"], [0, 1, 2, 4]))
    assert nl["results"]["psnr"][0] == float("inf") and nl["results"]["max_err"][0] == 0
    for name in ("rle", "png", "webp-lossless"):
        assert curves[name]["results"]["max_err"] == [0]
    assert "webp-lossless" in capsys.readouterr().out


def test_lossless_without_imagecodecs_says_so(tmp_path, capsys, monkeypatch):
    from nkcodec.tools import evaluate

    monkeypatch.setattr(evaluate, "imagecodecs_anchors", lambda: None)
    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_photo(folder / "a.png", 16, 24)
    res = evaluate.run_lossless(folder, progress=False)
    assert "jpegxl-lossless" not in res["curves"] and "imagecodecs is not installed" in res["notes"][0]
    assert "imagecodecs is not installed" in capsys.readouterr().out


def test_jobs_give_the_same_files_and_messages_in_order(tmp_path, capsys):
    """--jobs codes files in threads sharing one codec: the files and the printed
    lines are those of one-at-a-time coding, in input order."""
    rng = np.random.default_rng(1)
    srcs = []
    for i, shape in enumerate([(40, 52, 3), (20, 70, 3), (33, 33), (40, 52, 3), (9, 9, 4)]):
        srcs.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(srcs[-1])
    runs = {}
    for jobs, batch in (("1", "1"), ("3", "4")):
        opts = ["--jobs", jobs, "--batch-size", batch]
        assert main(["encode", *map(str, srcs), "-o", str(tmp_path / f"e{jobs}"), *opts]) == 0
        enc = capsys.readouterr().out.replace(f"e{jobs}", "e")
        coded = sorted((tmp_path / f"e{jobs}").iterdir())
        assert main(["decode", *map(str, coded), "-o", str(tmp_path / f"d{jobs}"), *opts]) == 0
        dec = capsys.readouterr().out.replace(f"d{jobs}", "d")
        files = {p.name: p.read_bytes() for p in coded}
        pixels = {p.name: np.asarray(Image.open(p)) for p in (tmp_path / f"d{jobs}").iterdir()}
        runs[jobs] = enc, dec, files, pixels
    assert [line.split(":")[0][-5:] for line in runs["3"][0].splitlines()] == [f"{i}.nkc" for i in range(5)]
    assert runs["1"][:3] == runs["3"][:3]
    for name, a in runs["1"][3].items():
        np.testing.assert_array_equal(a, runs["3"][3][name])
    assert main(["encode", str(srcs[0]), "--jobs", "0"]) == 1
    assert "--jobs" in capsys.readouterr().err
    assert main(["decode", str(coded[0]), "--batch-size", "0"]) == 1
    assert "--batch-size" in capsys.readouterr().err
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]  # every temporary file was renamed


def test_a_failed_write_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    """Outputs are written to a temporary file and renamed: a write that fails
    midway (here: Pillow raising after writing some bytes) leaves neither the
    output nor the temporary file, and the other files are still written."""
    from nkcodec.tools import cli

    srcs = []
    for i in range(3):
        srcs.append(tmp_path / f"{i}.nkc")
        srcs[-1].write_bytes(nkcodec.compress(np.full((8, 8, 3), 40 * i, np.uint8), preset="rle"))
    real = cli.write_image

    def failing(path, image, format=None):
        if image[0, 0, 0] == 40:
            Path(path).write_bytes(b"half a PNG")
            raise OSError("disk full")
        real(path, image, format)

    monkeypatch.setattr(cli, "write_image", failing)
    out = tmp_path / "out"
    assert main(["decode", *map(str, srcs), "-o", str(out)]) == 1
    assert "1.nkc: disk full" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "2.png"]


def test_info_names_the_decoder_and_retired_models(tmp_path, capsys):
    from .common import FIXTURES

    assert main(["info", str(FIXTURES / "context_v1_model6.nkc")]) == 0
    assert "decoder:   exact, float32 GEMMs (fixed-point v2)" in capsys.readouterr().out
    retired = str(FIXTURES / "scalar_v1_model2.nkc")
    assert main(["info", retired]) == 0
    assert "nk64-2, retired: decode with nkcodec 0.1.0" in capsys.readouterr().out
    assert main(["decode", retired, "-o", str(tmp_path / "x.png")]) == 1
    assert "nkcodec 0.1.0 is the last release that decodes it" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_existing_outputs_need_force_or_skip_existing(tmp_path, capsys):
    srcs = []
    for i in range(3):
        srcs.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(srcs[-1])
    out = tmp_path / "out"
    out.mkdir()
    (out / "1.nkc").write_bytes(b"old")
    assert main(["encode", *map(str, srcs), "-o", str(out), "--preset", "rle"]) == 1
    assert "--force" in capsys.readouterr().err and not (out / "0.nkc").exists()
    assert main(["encode", *map(str, srcs), "-o", str(out), "--preset", "rle", "--skip-existing"]) == 0
    assert "1.nkc: exists, skipped" in capsys.readouterr().out
    assert (out / "1.nkc").read_bytes() == b"old" and (out / "2.nkc").exists()
    assert main(["encode", *map(str, srcs), "-o", str(out), "--preset", "rle", "--force"]) == 0
    assert (out / "1.nkc").read_bytes()[:3] == b"NKC"
    assert main(["encode", str(srcs[0]), "-o", str(srcs[0]), "--force"]) == 1  # never an input
    assert "overwrite the input" in capsys.readouterr().err


def test_a_killed_batch_leaves_complete_files_and_a_rerun_finishes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    srcs = []
    rng = np.random.default_rng(0)
    for i in range(16):
        srcs.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)).save(srcs[-1])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nkcodec", "encode", *map(str, srcs), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("*.nkc"))) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob("*.nkc"))
    for p in done:  # every file there is complete
        nkcodec.decompress(p.read_bytes())
    assert subprocess.run([*cmd, "--skip-existing"], capture_output=True).returncode == 0
    assert len(list(out.glob("*.nkc"))) == 16
    assert not list(out.glob(".*.part"))
    for p in sorted(out.glob("*.nkc")):
        assert p.read_bytes() == nkcodec.compress(np.asarray(Image.open(tmp_path / (p.stem + ".png"))))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_decode_gives_back_the_mode_encode_read(tmp_path, capsys, mode):
    rng = np.random.default_rng(2)
    src = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (24, 40, 4), dtype=np.uint8), "RGBA").convert(mode).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "x.nkc"), "--preset", "rle"]) == 0
    assert main(["info", str(tmp_path / "x.nkc")]) == 0
    assert f"mode {mode}" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "x.nkc"), "-o", str(tmp_path / "out.png")]) == 0
    with Image.open(tmp_path / "out.png") as out, Image.open(src) as ref:
        assert out.mode == mode
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize(
    "make, said",
    [
        (lambda a: Image.fromarray(a[..., 0] > 127), "mode 1 converted to L; few colours"),
        (lambda a: Image.fromarray(a[..., :3]).quantize(16), "mode P converted to RGB; few colours"),
        (lambda a: Image.fromarray(a[..., :3]).convert("CMYK"), "mode CMYK converted to RGB"),
    ],
)
def test_converted_modes_are_announced(tmp_path, capsys, make, said):
    rng = np.random.default_rng(3)
    src = tmp_path / ("in.tif" if "CMYK" in said else "in.png")
    make(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "x.nkc"), "--preset", "rle"]) == 0
    assert said in capsys.readouterr().err


def test_16_bit_images_are_refused(tmp_path, capsys):
    src = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(src)
    assert main(["encode", str(src)]) == 1
    assert "not 8-bit" in capsys.readouterr().err


@pytest.mark.parametrize("name, image", [
    ("g16.png", (np.arange(40 * 30).reshape(40, 30) * 53 % 65536).astype(np.uint16)),
    ("rgb16.png", (np.arange(20 * 30 * 3).reshape(20, 30, 3) * 29 % 4096).astype(np.uint16)),
    ("stack.tif", (np.arange(20 * 24 * 7).reshape(20, 24, 7) * 11 % 65536).astype(np.uint16)),
    ("stack8.tif", (np.arange(20 * 24 * 6).reshape(20, 24, 6) % 251).astype(np.uint8)),
])  # fmt: skip
def test_near_lossless_codes_16_bit_and_many_channel_files_exactly(tmp_path, capsys, name, image):
    pytest.importorskip("imagecodecs")
    tifffile = pytest.importorskip("tifffile")
    from nkcodec.imageio import read_image, write_image

    src = tmp_path / name
    if name.endswith(".tif"):
        tifffile.imwrite(src, image)
    else:
        write_image(src, image)
    assert main(["encode", str(src), "--preset", "near-lossless", "--max-error", "0", "-o", str(tmp_path / "x.nkc")]) == 0
    out = tmp_path / f"back{src.suffix}"
    assert main(["decode", str(tmp_path / "x.nkc"), "-o", str(out)]) == 0
    back = read_image(out, deep=True)
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)
    assert main(["info", str(tmp_path / "x.nkc")]) == 0
    said = capsys.readouterr().out
    assert f"{image.itemsize * 8}-bit samples" in said or "mode" in said
    if image.ndim == 3 and image.shape[2] > 4:  # PNG holds at most 4 channels: refused before anything is written
        assert main(["decode", str(tmp_path / "x.nkc"), "-o", str(tmp_path / "no.png")]) == 1
        assert "write .tif" in capsys.readouterr().err and not (tmp_path / "no.png").exists()
    if name == "stack.tif":  # more channels than a stream holds: refused, naming the file
        tifffile.imwrite(tmp_path / "many.tif", np.zeros((8, 8, 17), np.uint16), photometric="minisblack")
        assert main(["encode", str(tmp_path / "many.tif"), "--preset", "near-lossless", "-o", str(tmp_path / "m.nkc")]) == 1
        assert "many.tif: 17 channels" in capsys.readouterr().err and not (tmp_path / "m.nkc").exists()
    assert main(["encode", str(src), "--preset", "near-lossless", "--bits", "17", "-o", str(tmp_path / "y.nkc")]) == 1
    assert "bits" in capsys.readouterr().err and not (tmp_path / "y.nkc").exists()


def test_train_export_fit_context_and_effort(tmp_path, capsys):
    """The model-making commands end to end on a tiny model: train writes a
    checkpoint, export a weights file with the given id, fit-context adds
    context tables that the context preset then codes with; encode --effort 1."""
    from nkcodec import zoo

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(data / f"{i}.png")
    work = tmp_path / "w"
    tiny = ["--steps", "2", "--batch", "2", "--crop", "32", "--n", "8", "--m", "12", "--per-quality-prior"]
    assert main(["train", "--data", str(data), "--workdir", str(work), *tiny]) == 0
    weights = tmp_path / "tiny.npz"
    assert main(["export", str(work / "ckpt.npz"), "-o", str(weights), "--model-id", "91"]) == 0
    assert "exported EMA weights at step 2" in capsys.readouterr().out
    assert main(["fit-context", str(weights), "--data", str(data), "--contexts", "2"]) == 0
    m = zoo.ModelRuntime(weights)
    assert m.model_id == 91 and m.context_tables(4).version == 2
    img = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert nkcodec.compress(img, 4, model=str(weights))[:3] == b"NKC"
    src = data / "0.png"
    assert main(["encode", str(src), "-o", str(tmp_path / "e.nkc"), "--effort", "1", "--quality", "2"]) == 0
    assert np.asarray(nkcodec.decompress((tmp_path / "e.nkc").read_bytes())).shape == (72, 80, 3)


def test_exit_codes(monkeypatch, capsys):
    from nkcodec.tools import cli

    def interrupted(args):
        raise KeyboardInterrupt

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_info", interrupted)
    assert main(["info", "x.nkc"]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_info", broken)
    assert main(["info", "x.nkc"]) == 2
    assert capsys.readouterr().err.strip() == "nkcodec: error: RuntimeError: a bug"
    with pytest.raises(SystemExit) as usage:  # argparse's own usage errors: status 2
        main(["encode"])
    assert usage.value.code == 2


def test_eval_ablation_command(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _write_photo(folder / "a.png", 32, 48)
    assert main(["eval", str(folder), "--ablation", "--json", str(tmp_path / "a.json")]) == 0
    res = json.loads((tmp_path / "a.json").read_text())
    assert res["images"] == 1 and res["curves"]["scalar"]["settings"] == list(range(1, 9))
    assert main(["eval", str(folder), "--ablation", "--published", str(tmp_path / "a.json")]) == 1
    assert "--published applies" in capsys.readouterr().err


def test_outputs_get_the_mode_any_tool_gives_and_force_keeps_it(tmp_path):
    """A new output gets 0o666 less the umask (0o644 under 022), not the temporary file's
    0o600; an existing output overwritten with --force keeps its own mode."""
    import os

    _write_photo(tmp_path / "p.png")
    old = os.umask(0o022)
    try:
        assert main(["encode", str(tmp_path / "p.png"), "-o", str(tmp_path / "p.nkc"), "--preset", "rle"]) == 0
        assert main(["decode", str(tmp_path / "p.nkc"), "-o", str(tmp_path / "d.png")]) == 0
        assert (tmp_path / "p.nkc").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "d.png").stat().st_mode & 0o777 == 0o644
        os.chmod(tmp_path / "d.png", 0o640)
        assert main(["decode", str(tmp_path / "p.nkc"), "-o", str(tmp_path / "d.png"), "--force"]) == 0
        assert (tmp_path / "d.png").stat().st_mode & 0o777 == 0o640
        os.umask(0o077)
        assert main(["decode", str(tmp_path / "p.nkc"), "-o", str(tmp_path / "e.png")]) == 0
        assert (tmp_path / "e.png").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".tif", "TIFF"), (".tiff", "TIFF"), (".webp", "WEBP"), (".bmp", "BMP")])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_decode_writes_the_lossless_format_its_extension_names(tmp_path, capsys, suffix, fmt, channels):
    img = _photo_array((20, 28, channels))
    src = tmp_path / "p.nkc"
    src.write_bytes(nkcodec.compress(img, preset="rle"))
    out = tmp_path / f"d{suffix}"
    if fmt == "BMP" and channels in (2, 4):  # BMP keeps no alpha: refused, not lost, and the message names the file
        assert main(["decode", str(src), "-o", str(out)]) == 1 and not out.exists()
        err = capsys.readouterr().err
        assert err.startswith(f"nkcodec: error: {out}: BMP keeps no alpha") and ".part" not in err
        return
    assert main(["decode", str(src), "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == fmt
        back = np.asarray(im.convert({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]))
    np.testing.assert_array_equal(back.reshape(img.shape), img)  # every sample, as decoded


@pytest.mark.parametrize("name", ["d.jpg", "d.JPEG", "d.jxl", "d.gif", "d.xyz", "d.nkc", "d"])
def test_decode_refuses_a_lossy_or_unknown_extension(tmp_path, capsys, name):
    src = tmp_path / "p.nkc"
    src.write_bytes(nkcodec.compress(_photo_array((8, 8, 3)), preset="rle"))
    assert main(["decode", str(src), "-o", str(tmp_path / name)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (".png" in err and ".webp" in err)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out"])
def test_encode_refuses_an_output_that_is_not_nkc(tmp_path, capsys, name):
    _write_photo(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "-o", str(tmp_path / name)]) == 1
    assert "*.nkc" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_an_output_in_a_missing_folder_names_the_folder(tmp_path, capsys):
    _write_photo(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "-o", str(tmp_path / "nodir" / "x.nkc"), "--preset", "rle"]) == 1
    err = capsys.readouterr().err
    assert "nodir does not exist" in err and ".part" not in err


@pytest.mark.parametrize("mode", ["LA", "L", "RGBA"])
def test_compare_takes_every_mode(tmp_path, mode):
    Image.fromarray(_photo_array((36, 50, 3))).convert(mode).save(tmp_path / "p.png")
    out = tmp_path / "cmp.png"
    assert main(["compare", str(tmp_path / "p.png"), "-o", str(out), "--quality", "2"]) == 0
    assert out.stat().st_size > 0


def test_usage_errors_are_one_line_with_status_2(capsys):
    for argv in (["encode"], ["encode", "a.png", "--force", "--skip-existing"], ["fuzz", "-n", "-5"], ["nope"]):
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("nkcodec: error: ") and err.count("\n") == 1, err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"nkcodec {nkcodec.__version__}"


def test_info_takes_several_files_and_says_when_quality_is_not_used(tmp_path, capsys):
    img = _photo_array((16, 24, 3))
    (tmp_path / "a.nkc").write_bytes(nkcodec.compress(img, 3))
    (tmp_path / "b.nkc").write_bytes(nkcodec.compress(img, preset="near-lossless", max_error=0))
    (tmp_path / "c.nkc").write_bytes(nkcodec.compress(img, preset="palette", k=8))
    assert main(["info", *(str(tmp_path / n) for n in ("a.nkc", "b.nkc", "c.nkc"))]) == 0
    out = capsys.readouterr().out
    assert out.count("file:") == 3 and "quality 3" in out and out.count("quality not used") == 2


def test_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    from .common import FIXTURES

    cmd = f"{sys.executable} -m nkcodec info {FIXTURES / 'rle_v1.nkc'} {FIXTURES / 'rle_v1.nkc'} | head -1"
    out = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True, timeout=300)
    assert out.stdout.startswith("file:") and "Broken pipe" not in out.stderr and "Traceback" not in out.stderr


def test_output_to_standard_output_is_refused(tmp_path, capsys):
    _write_photo(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "-o", "-"]) == 1
    assert "standard output" in capsys.readouterr().err and not Path("-").exists()


def test_fuzz_without_a_fixtures_folder_makes_its_own_corpus(tmp_path, monkeypatch, capsys):
    from nkcodec.tools import fuzz

    monkeypatch.chdir(tmp_path)  # no tests/fixtures here, as from an installed wheel
    corpus = fuzz.default_corpus()
    assert len(corpus) >= 3 * len(nkcodec.PRESETS) and all(data[:3] == b"NKC" for _, data in corpus)
    assert main(["fuzz", "-n", "20", "-j", "1", "--json", str(tmp_path / "f.json")]) == 0


def test_16_bit_rgb_png_is_refused_not_clipped(tmp_path, capsys):
    imagecodecs = pytest.importorskip("imagecodecs")
    (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode((np.arange(4 * 5 * 3).reshape(4, 5, 3) * 1000).astype(np.uint16)))
    assert main(["encode", str(tmp_path / "rgb16.png"), "-o", str(tmp_path / "x.nkc")]) == 1
    assert "16-bit" in capsys.readouterr().err and not (tmp_path / "x.nkc").exists()


def test_exif_orientation_is_applied_and_said(tmp_path, capsys):
    img = _photo_array((20, 30, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to show
    Image.fromarray(img).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert main(["encode", str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "p.nkc"), "--preset", "rle"]) == 0
    assert "EXIF orientation 6 applied" in capsys.readouterr().err
    assert nkcodec.decompress((tmp_path / "p.nkc").read_bytes()).shape == (30, 20, 3)  # as it is shown


def test_an_animation_is_said_to_lose_its_other_frames(tmp_path, capsys):
    frames = [Image.fromarray(_photo_array((16, 16, 3), seed=s)).convert("P") for s in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert main(["encode", str(tmp_path / "a.gif"), "-o", str(tmp_path / "a.nkc"), "--preset", "rle"]) == 0
    assert "3 frames; only the first is coded" in capsys.readouterr().err


def test_several_inputs_need_a_folder_and_a_trailing_slash_makes_one(tmp_path, capsys):
    _write_photo(tmp_path / "a.png")
    _write_photo(tmp_path / "b.png")
    assert main(["encode", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "one.nkc"), "--preset", "rle"]) == 1
    assert "folder" in capsys.readouterr().err and not (tmp_path / "one.nkc").exists()
    assert main(["encode", str(tmp_path / "a.png"), "-o", str(tmp_path / "newdir") + "/", "--preset", "rle"]) == 0
    assert (tmp_path / "newdir" / "a.nkc").is_file()


def test_a_stream_larger_than_raw_is_noted(tmp_path, capsys):
    Image.fromarray(_photo_array((32, 48, 3))).save(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "-o", str(tmp_path / "p.nkc"), "--preset", "rle"]) == 0
    err = capsys.readouterr().err
    assert "larger than the raw samples" in err and "near-lossless" in err


def test_a_damaged_image_file_is_named(tmp_path, capsys):
    _write_photo(tmp_path / "p.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "p.png").read_bytes()[:120])
    assert main(["encode", str(tmp_path / "cut.png"), "-o", str(tmp_path / "c.nkc")]) == 1
    assert capsys.readouterr().err.startswith(f"nkcodec: error: {tmp_path / 'cut.png'}: ")


def test_deep_data_are_real_16_bit_mri_slices():
    pytest.importorskip("nibabel")
    from nkcodec.tools.deep_data import deep_images, deep_stacks

    slices, stacks = deep_images(), deep_stacks(8)
    assert len(slices) == 124 and all(im.dtype == np.uint16 and im.ndim == 2 for im in slices.values())
    assert max(int(im.max()) for im in slices.values()) > 4095  # more than 12 bits are used
    assert len(stacks) == 15 and all(s.shape[2] == 8 for s in stacks.values())
    first = next(iter(stacks))
    np.testing.assert_array_equal(stacks[first][..., 1], slices[first.split("+")[0][:-3] + "001"])


def test_eval_lossless_deep_runs_every_codec_on_the_same_slices(tmp_path, monkeypatch, capsys):
    pytest.importorskip("imagecodecs")
    from nkcodec.tools import deep_data

    rng = np.random.default_rng(0)
    few = {f"s{i}": (np.cumsum(rng.integers(0, 40, (24, 20)), axis=1) % 65536).astype(np.uint16) for i in range(2)}
    monkeypatch.setattr(deep_data, "deep_images", lambda: few)
    monkeypatch.setattr(deep_data, "deep_stacks", lambda depth=8: {"st": np.stack(list(few.values()), -1)})
    assert main(["eval", "--lossless", "--deep", "--json", str(tmp_path / "d.json")]) == 0
    res = json.loads((tmp_path / "d.json").read_text())
    curves = res["curves"]
    assert {"near-lossless", "png-16", "jpeg2000-lossless", "jpegxl-lossless", "jpeg-ls", "near-lossless (8-slice stacks)"} <= set(curves)
    for name, c in curves.items():  # every codec keeps its bound, on the same images
        assert all(e <= s for e, s in zip(c["results"]["max_err"], c["settings"])), name
    assert main(["eval", "--deep"]) == 1 and "--deep applies to --lossless" in capsys.readouterr().err
