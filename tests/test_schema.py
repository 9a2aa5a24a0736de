"""One schema check of every stream's parameters (nkcodec.format.schema): each fixture's
params, with one field broken, fails with CorruptStreamError naming that field."""

import dataclasses
import json

import pytest

import nkcodec
from nkcodec import presets
from nkcodec.errors import CorruptStreamError
from nkcodec.format import schema
from nkcodec.format.container import pack_container, unpack_container

from .common import FIXTURES

FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.nkc"))


def _fields(params):
    for stage, keys in params.items():
        for key in keys:
            yield stage, key


def _with(header, sections, params) -> bytes:
    return pack_container(dataclasses.replace(header, params=params), sections)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_passes_the_schema(name):
    header, _ = unpack_container((FIXTURES / name).read_bytes())
    schema.validate(header, nkcodec.PRESETS[header.preset].declared_params())
    declared = presets.schema_for(header.preset, header.params)
    required = {s for s in declared if not s.endswith("?")}
    assert required <= set(header.params) <= {s.rstrip("?") for s in declared}


@pytest.mark.parametrize(
    "name",
    [
        "rle_v1.nkc",
        "palette_v1.nkc",
        "context-ctx2_v1_model3.nkc",
        "near-lossless_v1_model6.nkc",
        "near-lossless-v2-rgba_v1.nkc",
        "scalar-rle_v1_model5.nkc",
        "cluster_v1_model6.nkc",
        "paper_v1_model6.nkc",
    ],
)
def test_each_broken_field_is_named(name):
    header, sections = unpack_container((FIXTURES / name).read_bytes())
    for stage, key in _fields(header.params):
        for bad in (True, "x", None, [1], {"a": 1}, -(1 << 60), 1.5):
            params = json.loads(json.dumps(header.params))
            declared = presets.schema_for(header.preset, header.params)
            keys = declared.get(stage) or declared[stage + "?"]
            if (keys.get(key) or keys[key + "?"]).check(bad):  # allowed by the schema: other checks' business
                continue
            params[stage][key] = bad
            try:
                nkcodec.decompress(_with(header, sections, params))
            except CorruptStreamError as e:
                assert f"{stage}.{key}" in str(e), (stage, key, bad, str(e))
            else:
                raise AssertionError(f"{name}: {stage}.{key} = {bad!r} decoded")
        params = json.loads(json.dumps(header.params))
        del params[stage][key]
        if key != "v":  # the context version may be absent (version 1)
            with pytest.raises(CorruptStreamError, match=f"missing parameter {stage}.{key}"):
                nkcodec.decompress(_with(header, sections, params))
    for extra in ({"zz": 1}, {next(iter(header.params)): {**next(iter(header.params.values())), "zz": 0}}):
        params = {**json.loads(json.dumps(header.params)), **extra}
        with pytest.raises(CorruptStreamError, match="unknown parameter"):
            nkcodec.decompress(_with(header, sections, params))
    stage = next(iter(header.params))
    params = {k: v for k, v in header.params.items() if k != stage}
    with pytest.raises(CorruptStreamError, match=f"missing parameter {stage}"):
        nkcodec.decompress(_with(header, sections, params))


def test_every_preset_declares_its_params_and_has_a_format_id():
    from nkcodec.format.container import PRESET_IDS

    assert set(PRESET_IDS) == set(nkcodec.PRESETS)
    assert all(cls.declared_params() for cls in nkcodec.PRESETS.values())


# A constant image's stream is its colour alone: it is a valid stream of any size up to the
# caps (like any image format's), so a huge header over it is not a lie to catch.
SIZED_FIXTURES = [n for n in FIXTURE_FILES if "flat-constant" not in n]


@pytest.mark.parametrize("name", SIZED_FIXTURES)
def test_a_huge_header_over_a_small_payload_fails_before_allocating(name):
    """Every fixture, its header changed to declare 16384x16384 (the pixel cap):
    CorruptStreamError before any large allocation (too short for the image, or
    runs that do not cover it), not a decode of 268 MPix."""
    from nkcodec.tools import fuzz

    data = (FIXTURES / name).read_bytes()
    fields, params, sections = fuzz.split(data)
    fields[2] = fields[3] = 16384
    hostile = fuzz.reseal(fuzz.join(fields, params, sections))
    with pytest.raises(
        (CorruptStreamError, nkcodec.RetiredModelError),
        match="too short|cover|symbols, expected|tiles, expected|fewer than|retired|flat-block labels for|for an alpha plane of",
    ):
        nkcodec.decompress(hostile)


@pytest.mark.parametrize("preset", ["default", "scalar", "cluster", "paper", "scalar-rle", "near-lossless"])
@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_images_the_cheapest_streams_still_decode(preset, value):
    """The length check is a lower bound: the cheapest legitimate streams (flat
    images, whose symbols sit at their tables' largest probabilities) pass it."""
    import numpy as np

    img = np.full((1024, 768, 3), value, np.uint8)
    for q in (1, 8) if preset != "near-lossless" else (4,):
        data = nkcodec.compress(img, q, preset)
        assert nkcodec.decompress(data).shape == img.shape
