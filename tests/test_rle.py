import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nkcodec.coding import rle
from nkcodec.errors import CorruptStreamError

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def runs_arrays(dtype):
    """Arrays built from runs, so long runs and extreme values both appear."""
    info = np.iinfo(dtype)
    value = st.one_of(st.sampled_from([info.min, info.max, 0]), st.integers(info.min, info.max))
    run = st.tuples(value, st.integers(1, 300))
    return st.lists(run, max_size=40).map(lambda rs: np.concatenate([np.full(n, v, dtype) for v, n in rs]) if rs else np.empty(0, dtype))


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("variant", rle.VARIANTS)
def test_round_trip_property(dtype, variant):
    @settings(max_examples=60, deadline=None)
    @given(a=st.one_of(runs_arrays(dtype), hnp.arrays(dtype, st.integers(0, 200))))
    def check(a):
        values, keys = rle.encode(a, variant)
        assert values.dtype == a.dtype and keys.dtype == np.uint64
        np.testing.assert_array_equal(rle.decode(values, keys, variant), a)
        # Numba and NumPy agree, both ways
        rv, rk = rle.encode_reference(a, variant)
        np.testing.assert_array_equal(values, rv)
        np.testing.assert_array_equal(keys, rk)
        np.testing.assert_array_equal(rle.decode_reference(values, keys, variant), a)
        # packing round trip
        pv, pk = rle.unpack(rle.pack(values, keys), a.dtype)
        np.testing.assert_array_equal(pv, values)
        np.testing.assert_array_equal(pk, keys)

    check()


def test_keys_are_squared_run_lengths():
    a = np.array([7] * 5 + [0] * 1 + [3] * 12, np.int16)
    values, keys = rle.encode(a)
    assert values.tolist() == [7, 0, 3]
    assert keys.tolist() == [25, 1, 144]
    assert rle.encode(a, "plain")[1].tolist() == [5, 1, 12]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_edge_cases(dtype):
    info = np.iinfo(dtype)
    cases = [
        np.empty(0, dtype),
        np.array([info.max], dtype),
        np.full(3_000_000, info.min, dtype),  # one huge run
        np.resize(np.array([info.min, info.max], dtype), 1001),  # no runs at all
    ]
    for a in cases:
        values, keys = rle.encode(a)
        np.testing.assert_array_equal(rle.decode(values, keys), a)
    v, k = rle.encode(cases[2])
    assert k.tolist() == [3_000_000**2]
    assert rle.encode(cases[3])[1].tolist() == [1] * 1001


def test_huge_key_exact_sqrt():
    # keys above 2**52 take the exact integer path; one off by one must be rejected
    big = np.uint64(94_906_267) ** np.uint64(2)  # > 2**52
    values = np.array([1], np.uint8)
    with pytest.raises(CorruptStreamError, match="cap"):
        rle.decode(values, np.array([big], np.uint64), cap=1000)
    assert rle.decode(values, np.array([big], np.uint64), cap=1 << 40).size == 94_906_267
    with pytest.raises(CorruptStreamError, match="perfect square"):
        rle.decode(values, np.array([big + np.uint64(1)], np.uint64), cap=1 << 40)


@pytest.mark.parametrize("decode", [rle.decode, rle.decode_reference])
def test_bad_keys(decode):
    v = np.array([1, 2], np.int16)
    with pytest.raises(CorruptStreamError, match="zero"):
        decode(v, np.array([4, 0], np.uint64))
    with pytest.raises(CorruptStreamError, match="perfect square"):
        decode(v, np.array([4, 8], np.uint64))
    with pytest.raises(CorruptStreamError, match="cap"):
        decode(v, np.array([4, 9], np.uint64), cap=4)
    with pytest.raises(CorruptStreamError):
        decode(v, np.array([4], np.uint64))
    with pytest.raises(CorruptStreamError, match="cap"):
        decode(v, np.array([4, 2**63], np.uint64), variant="plain")


def test_bad_input():
    with pytest.raises(ValueError, match="integer"):
        rle.encode(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        rle.encode(np.zeros((2, 2), np.int8))
    with pytest.raises(ValueError, match="variant"):
        rle.encode(np.zeros(3, np.int8), "squares")


def test_image_pseudocode():
    img = np.zeros((17, 9, 3), np.uint8)
    img[4:9, 2:5] = 200
    values, keys = rle.encode_image(img)
    np.testing.assert_array_equal(rle.decode_image(values, keys, img.shape), img)
    with pytest.raises(CorruptStreamError, match="cover"):
        rle.decode_image(values[:-1], keys[:-1], img.shape)


def test_unpack_rejects_garbage():
    v, k = rle.encode(np.array([-300, -300, 5], np.int16))
    data = rle.pack(v, k)
    for cut in range(len(data)):
        with pytest.raises(CorruptStreamError):
            rle.unpack(data[:cut], np.int16)
    with pytest.raises(CorruptStreamError, match="trailing"):
        rle.unpack(data + b"\x00", np.int16)
    with pytest.raises(CorruptStreamError, match="range"):
        rle.unpack(data, np.int8)  # -300 does not fit
    with pytest.raises(CorruptStreamError, match="cap"):
        rle.unpack(data, np.int16, max_pairs=1)
    with pytest.raises(CorruptStreamError, match="varint"):
        rle.unpack(b"\x01" + b"\xff" * 11, np.int64)
    # a huge announced count must not allocate
    with pytest.raises(CorruptStreamError, match="announces"):
        rle.unpack(b"\xff\xff\xff\xff\xff\xff\xff\x7f", np.int16)
