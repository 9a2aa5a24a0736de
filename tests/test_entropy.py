import numpy as np
import pytest

from nkcodec.coding import entropy
from nkcodec.errors import CorruptStreamError


def test_fixed_tables_round_trip():
    rng = np.random.default_rng(0)
    counts = np.array([[50, 30, 10, 5, 5], [1, 1, 1, 1, 96]])
    t = entropy.IntTables.from_counts(counts)
    assert (t.freq.sum(1) == 1 << entropy.PRECISION).all()
    streams = [rng.integers(0, 5, 1000), rng.integers(0, 5, 10)]
    data = entropy.encode_symbols(streams, t)
    out = entropy.decode_symbols(data, t, [1000, 10])
    for a, b in zip(streams, out):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="out of range"):
        entropy.encode_symbols([np.array([7]), np.array([0])], t)
    one = entropy.IntTables(np.array([[1 << entropy.PRECISION, 0]]), np.array([1]))  # one-symbol alphabet
    assert entropy.encode_symbols([np.zeros(3, np.int64)], one) == entropy.encode_symbols([], one)  # costs nothing
    with pytest.raises(ValueError, match="out of range"):  # but a symbol it cannot hold is still refused
        entropy.encode_symbols([np.array([1])], one)


def test_streams_with_chosen_tables_round_trip():
    """encode_symbols(rows=) and SymbolDecoder.decode_run(rows=) pick any table per
    stream, repeats included; decoding with other tables does not reproduce them."""
    rng = np.random.default_rng(1)
    t = entropy.IntTables.from_counts(np.array([[90, 5, 5], [5, 90, 5], [5, 5, 90]]))
    rows = [2, 0, 0]
    streams = [rng.choice(3, 200, p=np.array(t.freq[k], float) / t.freq[k].sum()) for k in rows]
    data = entropy.encode_symbols(streams, t, rows=rows)
    out = entropy.SymbolDecoder(data).decode_run(t, 0, [s.size for s in streams], rows=rows)
    np.testing.assert_array_equal(out, np.concatenate(streams))
    wrong = entropy.SymbolDecoder(data).decode_run(t, 0, [s.size for s in streams])  # tables 0, 1, 2 instead
    assert not np.array_equal(wrong, np.concatenate(streams))


def test_skewed_data_costs_few_bits():
    t = entropy.IntTables.from_counts(np.array([[990, 10]]))
    data = entropy.encode_symbols([np.zeros(10000, np.int64)], t)
    assert len(data) * 8 < 10000 * 0.05


def test_adaptive_round_trip_and_corruption():
    rng = np.random.default_rng(1)
    streams = [rng.geometric(0.3, 500) - 1, rng.integers(0, 3, 200), np.zeros(5, np.int64)]
    sizes = [int(streams[0].max()) + 1, 3, 1]
    data = entropy.encode_adaptive(streams, sizes)
    out = entropy.decode_adaptive(data, [500, 200, 5])
    for a, b in zip(streams, out):
        np.testing.assert_array_equal(a, b)
    for cut in range(0, len(data), 3):
        try:
            entropy.decode_adaptive(data[:cut], [500, 200, 5])
        except CorruptStreamError:
            pass
    with pytest.raises(CorruptStreamError):
        entropy.decode_adaptive(data, [500, 200])


def test_varints():
    v = np.array([0, -1, 1, -(2**40), 2**40, 127, -128])
    np.testing.assert_array_equal(entropy.unpack_varints(entropy.pack_varints(v), v.size), v)
    with pytest.raises(CorruptStreamError):
        entropy.unpack_varints(entropy.pack_varints(v), v.size + 1)
    with pytest.raises(CorruptStreamError, match="trailing"):
        entropy.unpack_varints(entropy.pack_varints(v) + b"\x00", v.size)
