"""The learned presets (context = default, scalar, paper, ...) with the shipped weights."""

import json

import numpy as np
import pytest

import nkcodec
from nkcodec import zoo
from nkcodec.errors import CorruptStreamError

from .common import check_backwards_compatibility, check_corruption

PRESETS = ["context", "scalar", "paper", "scalar-rle", "cluster", "near-lossless"]


def photo(shape, seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 + 20, y * 2 + 40, (x + y) + 60], -1) + rng.integers(0, 20, (h, w, 3))
    img = np.clip(base, 0, 255).astype(np.uint8)
    if len(shape) == 2:
        return img[..., 0]
    if shape[2] == 1:
        return img[..., :1]
    if shape[2] in (2, 4):  # gray + alpha, RGB + alpha
        return np.concatenate([img[..., : shape[2] - 1], rng.integers(0, 256, (h, w, 1)).astype(np.uint8)], -1)
    return img


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (17, 33, 3), (40, 24), (23, 19, 1), (30, 70, 4), (21, 18, 2)])
def test_round_trip_shapes(preset, shape):
    img = photo(shape)
    data = nkcodec.compress(img, quality=4, preset=preset)
    out = nkcodec.decompress(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    if img.ndim == 3 and img.shape[2] in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])  # alpha is lossless
    assert nkcodec.compress(img, quality=4, preset=preset) == data  # identical bytes


def test_default_is_context_and_quality_changes_rate():
    img = photo((64, 96, 3))
    a = nkcodec.compress(img, quality=1)
    b = nkcodec.compress(img, quality=8)
    assert nkcodec.format.container.unpack_container(a)[0].preset == "context"
    assert nkcodec.decompress(a).shape == img.shape
    assert len(a) != len(b)


def test_large_image():
    img = photo((700, 1100, 3))
    out = nkcodec.decompress(nkcodec.compress(img, quality=2))
    assert out.shape == img.shape


@pytest.mark.parametrize("preset", PRESETS)
def test_corrupt_learned_streams(preset):
    data = nkcodec.compress(photo((20, 20, 3)), quality=3, preset=preset)
    check_corruption(nkcodec.decompress, data, flips=100)


def test_unknown_model_id_is_reported():
    from nkcodec.tools import fuzz

    fields, params, sections = fuzz.split(nkcodec.compress(photo((8, 8, 3)), quality=3))
    fields[8] = 999  # the model id
    data = fuzz.reseal(fuzz.join(fields, params, sections))
    with pytest.raises(CorruptStreamError, match="model id 999"):
        nkcodec.decompress(data)


@pytest.mark.parametrize("model_id", sorted(zoo.MODEL_IDS))
@pytest.mark.parametrize("preset", PRESETS)
def test_fixture_learned(preset, model_id):
    """Every shipped model keeps decoding its committed streams (one per preset)."""
    img = photo((48, 64, 3), seed=7)
    name = zoo.MODEL_IDS[model_id]
    if preset in ("context", "near-lossless") and not zoo.load_model(name).ctx:
        pytest.skip(f"{name} has no context tables")
    check_backwards_compatibility(
        f"{preset}_v1_model{model_id}",
        nkcodec.decompress,
        lambda: nkcodec.compress(img, quality=4, preset=preset, model=name),
        None,
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_deep_corruption_learned(preset):
    from .common import check_deep_corruption

    data = nkcodec.compress(photo((20, 36, 3)), quality=3, preset=preset)
    check_deep_corruption(nkcodec.decompress, data, flips=60)


def test_context_preset_needs_context_tables(tmp_path):
    from nkcodec.fit import train as T
    from nkcodec.nets import transforms as M

    tr = T.Trainer(M.NetConfig(n=8, m=12, filters=(2, 2)), T.TrainConfig(batch=1, crop=32, steps=1))
    path = zoo.export(tr, tmp_path / "tiny.npz", model_id=90)
    with pytest.raises(ValueError, match="no context tables"):
        nkcodec.compress(photo((16, 16, 3)), preset="context", model=str(path))


@pytest.mark.parametrize("model_id", sorted(zoo.RETIRED_MODELS))
@pytest.mark.parametrize("preset", PRESETS)
def test_fixture_of_retired_model_names_last_release(preset, model_id):
    """Streams of a model retired from the package raise RetiredModelError that
    names the model and the last release that decodes them (the fixtures stay
    committed, unchanged, as the evidence)."""
    from .common import FIXTURES

    path = FIXTURES / f"{preset}_v1_model{model_id}.nkc"
    if not path.exists():
        pytest.skip(f"no {preset} fixture for model {model_id}")
    name, release = zoo.RETIRED_MODELS[model_id]
    with pytest.raises(nkcodec.RetiredModelError, match=f"{name}.*nkcodec {release} is the last release"):
        nkcodec.decompress(path.read_bytes())
    assert not issubclass(nkcodec.RetiredModelError, CorruptStreamError)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("quality", [1, 8])
def test_context_coding_is_lossless_on_hostile_latents(quality, version):
    """Any int latent, escapes and huge values included, comes back exactly,
    with either context model version (version 2's mean predictions of such
    latents are huge, so its residuals escape as well)."""
    from nkcodec.coding import context

    # the default model has version-2 tables only; nk64-3 keeps version 1 for its old streams
    ct = zoo.load_model("nk64-3" if version == 1 else zoo.DEFAULT_MODEL).context_tables(quality, version)
    rng = np.random.default_rng(quality)
    y = rng.integers(-3, 4, (5, 7, ct.order.size)).astype(np.int32)
    y[0, 0, :5] = [1 << 20, -(1 << 20), 400, -400, 0]
    y[1, 0] = 1 << 20  # neighbour of a second-pass position, in every channel
    y[4, 6] = rng.integers(-5000, 5000, ct.order.size)
    params, sections = context.code_latent(ct, y)
    assert params["escapes"] > 0 and params.get("v", 1) == version
    out = context.decode_latent(ct, params, sections, y.shape[:2])
    np.testing.assert_array_equal(out.reshape(y.shape), y)
    with pytest.raises(CorruptStreamError):
        context.decode_latent(ct, {**params, "escapes": params["escapes"] + 1}, sections, y.shape[:2])
    with pytest.raises(CorruptStreamError):
        context.decode_latent(ct, [], sections, y.shape[:2])
    with pytest.raises(CorruptStreamError, match="version"):
        context.decode_latent(ct, {**params, "v": 3 - version}, sections, y.shape[:2])
    with pytest.raises(ValueError, match="out of range"):
        context.code_latent(ct, np.full((1, 1, ct.order.size), (1 << 20) + 1, np.int32))


def test_context_tiles_round_trip():
    """Version 2 codes latents over 64 positions a side in tiles (neighbours
    stop at tile borders); values at and across the borders come back exactly."""
    from nkcodec.coding import context

    ct = zoo.load_model().context_tables(3)
    rng = np.random.default_rng(5)
    y = (rng.laplace(0, 1.5, (70, 67, ct.order.size)) * np.linspace(3, 0.01, ct.order.size)).round().astype(np.int32)
    y[63:65, 63:65, :4] = [[1 << 20, -(1 << 20), 9, -7]]
    params, sections = context.code_latent(ct, y)
    assert len(context.coding_tiles(70, 67, 2)) == 4
    np.testing.assert_array_equal(context.decode_latent(ct, params, sections, (70, 67)).reshape(y.shape), y)


@pytest.mark.parametrize("version", [0, 3, True, "2", None])
def test_unknown_context_version_is_corrupt(version):
    from nkcodec.coding import context

    with pytest.raises(CorruptStreamError, match="context model version"):
        context.stream_version({"escapes": 0, "v": version})


def test_fixture_context_v2():
    """The version-2 context model keeps decoding its committed stream (the
    ``context_v1_model3`` fixture is a version-1 stream and stays too)."""
    img = photo((48, 64, 3), seed=7)
    name = "context-ctx2_v1_model3"

    def make():
        data = nkcodec.compress(img, quality=4, preset="context", model="nk64-3")
        assert nkcodec.format.container.unpack_container(data)[0].params["latent"]["v"] == 2
        return data

    check_backwards_compatibility(name, nkcodec.decompress, make, None)
    from .common import FIXTURES

    header = nkcodec.format.container.unpack_container((FIXTURES / f"{name}.nkc").read_bytes())[0]
    assert header.params["latent"]["v"] == 2


def test_context_beats_scalar_on_a_photo():
    """The contexts pay off on real photo content (Kodak crop when present, else a synthetic photo)."""
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak" / "kodim23.png"
    if p.exists():
        from PIL import Image

        img = np.asarray(Image.open(p).convert("RGB"))[:256, :256]
    else:
        img = photo((256, 256, 3), seed=3)
    a = nkcodec.compress(img, quality=4, preset="scalar")
    b = nkcodec.compress(img, quality=4, preset="context")
    np.testing.assert_array_equal(nkcodec.decompress(a), nkcodec.decompress(b))
    if p.exists():
        assert len(b) < len(a)


def test_malformed_context_model_is_refused():
    """Context arrays that do not fit the model raise ValueError when loaded,
    before any kernel indexes with them."""
    from nkcodec.coding import context
    from nkcodec.nets.transforms import NUM_QUALITIES

    m = zoo.load_model()
    arrays = dict(m.ctx)
    tables = [m.tables_for(q) for q in range(1, NUM_QUALITIES + 1)]
    assert context.ContextTables.from_arrays(arrays, tables, 2, 2).passes == 2
    bad = [
        {"v2/thresholds": arrays["v2/thresholds"][:, :100]},  # too few channels
        {"v2/wmag": arrays["v2/wmag"][..., :-1]},  # no own-neighbour column
        {"v2/wmean": arrays["v2/wmean"] * 0 + (1 << 16)},  # weights out of range
        {"v2/order": arrays["v2/order"] * 0},  # not a permutation
        {"v2/freq": arrays["v2/freq"][:-1]},  # wrong table size
    ]
    for change in bad:
        with pytest.raises(ValueError):
            context.ContextTables.from_arrays({**arrays, **change}, tables, 2, 2)


@pytest.mark.parametrize("max_error", [0, 1, 2, 7])
@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (9, 13, 3), (40, 24), (23, 19, 1), (30, 70, 4), (70, 67, 3)])
def test_near_lossless_bounds_every_sample(shape, max_error):
    """Every decoded sample is within max_error of the original (0: exact), on a
    smooth photo and on noise (whose residuals are large and escape), any channels."""
    for img in (photo(shape), np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)):
        data = nkcodec.compress(img, preset="near-lossless", max_error=max_error)
        out = nkcodec.decompress(data)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert int(np.abs(out.astype(int) - img.astype(int)).max()) <= max_error
    extreme = np.zeros(shape, np.uint8)
    extreme[::2] = 255  # residuals at the ends of the range, clipping on both sides
    out = nkcodec.decompress(nkcodec.compress(extreme, preset="near-lossless", max_error=max_error))
    assert int(np.abs(out.astype(int) - extreme.astype(int)).max()) <= max_error


def test_near_lossless_options_and_rate():
    img = photo((48, 64, 3))
    sizes = [len(nkcodec.compress(img, preset="near-lossless", max_error=d)) for d in (0, 1, 4)]
    assert sizes[0] > sizes[1] > sizes[2]  # a looser bound costs fewer bytes
    for bad in (-1, 32768, 1.5, True, "1"):  # above 32 is version 4's (test_lossless_depth), up to 32767
        with pytest.raises(ValueError, match="max_error"):
            nkcodec.Codec(preset="near-lossless", max_error=bad)
    with pytest.raises(ValueError, match="max_error at most 32"):  # version 1 (a learned base) stays at 32
        nkcodec.Codec(preset="near-lossless", max_error=33, base=6)
    with pytest.raises(ValueError, match="base"):
        nkcodec.Codec(preset="near-lossless", base=9)
    header = nkcodec.format.container.unpack_container(nkcodec.compress(img, preset="near-lossless", base=3))[0]
    assert header.params["residual"]["base"] == 3 and header.params["residual"]["max_error"] == 1


def test_residual_tables_are_integer_and_normalised():
    from nkcodec.coding import nearlossless_v1

    bank = nearlossless_v1.table_bank()
    assert bank.freq.shape == (len(nearlossless_v1.THETAS), nearlossless_v1.SIZE)
    assert np.all(bank.freq.sum(axis=1) == 1 << 16) and bank.freq.min() >= 1
    mid = nearlossless_v1.SIZE // 2
    for row in bank.freq.astype(np.int64):  # two-sided geometric: symmetric, falling away from 0
        assert np.abs(row[1:-1] - row[1:-1][::-1]).max() <= 1  # up to the rounding of the integer shares
        assert np.all(np.diff(row[mid:-1]) <= 1)


def test_near_lossless_malformed_residuals_are_corrupt():
    from nkcodec.coding import nearlossless_v1
    from nkcodec.coding.entropy import pack_varints

    x = photo((12, 10, 3))
    base = np.clip(x.astype(int) + 5, 0, 255).astype(np.uint8)
    params, sections = nearlossless_v1.encode(x, base, 1)
    assert np.abs(nearlossless_v1.decode(base, params, sections).astype(int) - x).max() <= 1
    for p in ({**params, "max_error": 99}, {**params, "max_error": True}, {**params, "escapes": params["escapes"] + 1}, []):
        with pytest.raises(CorruptStreamError):
            nearlossless_v1.decode(base, p, sections)
    n_coefs = len(nearlossless_v1.encode(x, base, 1)[1][1])  # bytes of the weights section
    bad_sections = [
        sections[:3],
        [bytes([200]) + sections[0][1:], *sections[1:]],  # a table index past the bank
        [sections[0] + b"\0", *sections[1:]],  # one choice too many
        [sections[0], pack_varints([1 << 20] * nearlossless_v1.COEFS_PER_TILE), *sections[2:]],  # weight out of range
        [sections[0], sections[1][: n_coefs - 1], *sections[2:]],  # weights truncated
    ]
    for secs in bad_sections:
        with pytest.raises(CorruptStreamError):
            nearlossless_v1.decode(base, params, secs)
    huge = nearlossless_v1.encode(x, np.zeros_like(x), 0)  # residuals up to 255 escape
    assert huge[0]["escapes"] > 0
    np.testing.assert_array_equal(nearlossless_v1.decode(np.zeros_like(x), *huge), x)


def test_near_lossless_tiles():
    """Images over 1024 pixels a side are coded in tiles, each on its own; the
    bound holds across the tile borders."""
    from nkcodec.coding import nearlossless_v1

    x = photo((9, 2100, 3), seed=2)
    base = np.clip(x.astype(int) + np.random.default_rng(0).integers(-9, 10, x.shape), 0, 255).astype(np.uint8)
    assert len(nearlossless_v1.residual_tiles(9, 2100)) == 3
    for d in (0, 2):
        out = nearlossless_v1.decode(base, *nearlossless_v1.encode(x, base, d))
        assert np.abs(out.astype(int) - x).max() <= d


def test_compress_to_size_picks_the_highest_quality_that_fits():
    img = photo((64, 96, 3))
    sizes = {q: len(nkcodec.compress(img, quality=q)) for q in range(1, 9)}
    for q in (1, 3, 8):
        data = nkcodec.compress_to_size(img, sizes[q])
        assert len(data) <= sizes[q]
        best = max(k for k, n in sizes.items() if n <= sizes[q])
        assert nkcodec.format.container.unpack_container(data)[0].quality == best
    with pytest.raises(ValueError, match="quality 1"):
        nkcodec.compress_to_size(img, sizes[1] - 1)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes"):
            nkcodec.compress_to_size(img, bad)
    with pytest.raises(ValueError, match="quality ladder"):
        nkcodec.compress_to_size(img, 10**6, preset="near-lossless")


def test_documented_submodules_are_attributes():
    import importlib
    import subprocess
    import sys

    code = "import nkcodec; [getattr(nkcodec, m) for m in ('zoo', 'context', 'residual', 'entropy', 'kmeans', 'metrics', 'rle', 'evaluate')]"
    subprocess.run([sys.executable, "-c", code], check=True)  # a fresh interpreter: nothing imported before
    assert importlib.import_module("nkcodec").compress_to_size is nkcodec.codec.compress_to_size


def _rd_objective(img, data, quality):
    from nkcodec.nets.transforms import LAMBDAS

    out = nkcodec.decompress(data).astype(np.float64)
    mse = np.mean((out - img) ** 2) / 255.0**2
    return 8 * len(data) / (img.shape[0] * img.shape[1]) + LAMBDAS[quality - 1] * 255.0**2 * mse


def test_effort_refines_the_latent_and_streams_stay_ordinary():
    """effort=1 changes only the encoder: the stream is a normal context stream,
    repeat encodes give identical bytes, and the trained objective (real bytes,
    decoded pixels) is lower than with the analysis net's own latent."""
    img = photo((48, 80, 3), seed=3)
    base = nkcodec.compress(img, quality=4)
    refined = nkcodec.compress(img, quality=4, effort=1)
    assert nkcodec.compress(img, quality=4, effort=1) == refined
    assert nkcodec.format.container.unpack_container(refined)[0].preset == "context"
    assert nkcodec.decompress(refined).shape == img.shape
    assert refined != base  # the refinement moved the latent (1.8% lower objective here)
    assert _rd_objective(img, refined, 4) < _rd_objective(img, base, 4)
    wide = photo((20, 1050, 3), seed=4)  # a latent of 2 x 66: two coding tiles, refined one after the other
    data = nkcodec.compress(wide, quality=2, effort=1)
    assert nkcodec.decompress(data).shape == wide.shape
    for bad in (2, -1, True, "1", 0.5):
        with pytest.raises(ValueError, match="effort"):
            nkcodec.Codec(4, effort=bad)


def test_threads_share_a_cold_model():
    """A model (and so a Codec) may be shared by threads: a fresh model, whose nets
    and tables are all built lazily, used by 4 threads at once gives the same bytes
    and pixels as one thread, and builds its analysis net once."""
    from concurrent.futures import ThreadPoolExecutor

    from nkcodec.coding.latent_codecs import ContextLatent
    from nkcodec.format.container import Header
    from nkcodec.presets.base import latent_hw

    codec = ContextLatent()

    def encode_context(m, img, q):
        return codec.encode(m, m.encode_latent(img, q), q)

    def decode_context(header, sections, m, q):
        y = codec.decode(m, header.params, sections, latent_hw(header), q)
        return m.decode_latent(y, q, (header.height, header.width))

    m = zoo.open_model(zoo.DEFAULT_MODEL)
    builds = []
    build = m._build_analysis
    m._build_analysis = lambda: builds.append(1) or build()
    imgs = [photo((40, 56, 3), seed) for seed in range(4)] + [photo((70, 30, 3), seed) for seed in range(4)]
    jobs = [(img, 2 + i % 3) for i, img in enumerate(imgs)]
    with ThreadPoolExecutor(4) as ex:
        coded = list(ex.map(lambda job: encode_context(m, *job)[:2], jobs))
    assert len(builds) == 1
    assert coded == [encode_context(m, *job)[:2] for job in jobs]
    hdrs = [Header(*img.shape, "context", q, m.model_id, params=p) for (img, q), (p, _) in zip(jobs, coded)]

    def decode(i):
        return decode_context(hdrs[i], coded[i][1], m, hdrs[i].quality)

    with ThreadPoolExecutor(4) as ex:
        pix = list(ex.map(decode, range(len(jobs))))
    for i, a in enumerate(pix):
        np.testing.assert_array_equal(a, decode(i))


def test_refinement_progress_only_on_a_terminal_and_for_large_images(monkeypatch):
    import io
    import sys

    from nkcodec.nets.refine import tile_progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for tty, wanted, shown in ((True, True, True), (True, False, False), (False, True, False)):
        err = Tty() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        assert list(tile_progress([1, 2, 3], wanted)) == [1, 2, 3]
        assert ("refinement" in err.getvalue()) == shown


@pytest.mark.parametrize(
    "fixture, path",
    [
        ("cluster_v1_model6", ("cluster",)),
        ("context_v1_model6", ("latent", "v")),
        ("near-lossless_v1_model6", ("latent", "v")),
        ("scalar_v1_model6", ("latent",)),
    ],
)
@pytest.mark.parametrize("value", [None, True, 7, 1.5, "x", [1], {"a": 1}])
def test_params_of_the_wrong_type_are_corrupt(fixture, path, value):
    """A stage's parameters (or one of them) replaced by a value of another JSON
    type, CRC recomputed: CorruptStreamError, never AttributeError or TypeError
    (found by mutating the fixtures)."""
    import dataclasses

    from nkcodec.format.container import pack_container, unpack_container

    from .common import FIXTURES

    header, sections = unpack_container((FIXTURES / f"{fixture}.nkc").read_bytes())
    params = json.loads(json.dumps(header.params))
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    data = pack_container(dataclasses.replace(header, params=params), sections)
    try:
        nkcodec.decompress(data)  # some values are valid (an absent version reads as 1)
    except CorruptStreamError:
        pass


def test_ans_section_not_ending_in_a_zero_word_is_corrupt():
    from nkcodec.coding.entropy import SymbolDecoder

    with pytest.raises(CorruptStreamError, match="entropy-coded section is invalid"):
        SymbolDecoder(np.array([1, 2, 0], np.uint32).tobytes())


# PSNR (dB) at quality 4 on the shipped photos, measured in session 8 with nk64-5x, less 0.5 dB:
# a broken model, table or decoder falls far below these.
QUALITY_FLOOR = {
    "kodim05_half.png": {"default": 26.9, "scalar": 26.9, "paper": 26.7, "cluster": 19.3, "scalar-rle": 26.9},
    "kodim15_half.png": {"default": 30.3, "scalar": 30.3, "paper": 30.1, "cluster": 25.7, "scalar-rle": 30.3},
    "kodim23_half.png": {"default": 31.4, "scalar": 31.4, "paper": 30.9, "cluster": 25.1, "scalar-rle": 31.4},
}


@pytest.mark.parametrize("preset", ["default", "scalar", "paper", "cluster", "scalar-rle"])
def test_quality_floor_on_real_photos(preset):
    from nkcodec.metrics import bpp, psnr
    from nkcodec.tools.bench import sample_images

    for name, img in sample_images().items():
        data = nkcodec.compress(img, 4, preset)
        assert psnr(img, nkcodec.decompress(data)) >= QUALITY_FLOOR[name][preset], (name, preset)
        assert bpp(data, img) < (8.0 if preset == "paper" else 2.0)  # not by spending bits without bound (paper: no entropy coder)


@pytest.mark.parametrize("shape", [(64, 64, 3), (96, 160, 3)])
def test_the_analysis_without_flax_is_the_flax_module_bit_for_bit(shape):
    """The encoder's pure-JAX analysis (nkcodec.nets.analysis) gives the Flax module's
    latents exactly, before rounding, at every quality: the same streams as before it."""
    import jax.numpy as jnp

    m = zoo.load_model()
    x = np.stack([photo(shape, seed) for seed in range(2)])
    nets = m.float_nets()
    for q in range(1, 9):
        pure = m._analyse(m.analysis_nets().ana, x, [q, q])
        module = np.asarray(nets.ana(nets.state, jnp.asarray(x.astype(np.float32) / 255.0), jnp.asarray([q - 1] * 2)))
        np.testing.assert_array_equal(pure, module)
