"""The compiled ANS decoder (nkcodec.coding.ans) reads constriction's streams as the
library does, and the context model's compiled decode and its float64 products
are exact."""

import constriction
import numpy as np
import pytest

from nkcodec import zoo
from nkcodec.coding import ans, context, entropy
from nkcodec.errors import CorruptStreamError


def _library(data: bytes, tables: entropy.IntTables, runs: list) -> list:
    """The same runs decoded by constriction itself: the reference."""
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, np.uint32).copy())
    models = tables.coding_models()
    return [np.zeros(n, np.int32) if models[k] is None else coder.decode(models[k], n) for k, n in runs]


def _random_tables(rng, normalised: bool) -> entropy.IntTables:
    k, width = int(rng.integers(1, 6)), int(rng.integers(1, 400))
    size = rng.integers(1, width + 1, k)
    size[0] = width  # one full-width row, and (when width > 1) shorter ones
    if normalised:  # as nkcodec writes them: every row sums to 2**16 (the shorter ones then do not)
        freq = np.stack([entropy.IntTables.from_counts(rng.exponential(1.0, (1, width)) ** 4).freq[0] for _ in range(k)])
    else:  # any totals: the float quantisation then rounds, and must round as the library does
        freq = rng.integers(1, 5000, (k, width)).astype(np.uint32)
    return entropy.IntTables(freq, size)


@pytest.mark.parametrize("normalised", [True, False])
def test_decoder_matches_the_library(normalised):
    """Streams written by the library decode to the library's symbols, and so do
    random words and reads past the end (where ANS decoding goes on)."""
    rng = np.random.default_rng(7 if normalised else 8)
    for _ in range(40):
        t = _random_tables(rng, normalised)
        k_n = t.size.size
        streams = [rng.integers(0, t.size[k], int(rng.integers(0, 1500))) for k in range(k_n)]
        data = entropy.encode_symbols(streams, t)
        runs = [(k, s.size) for k, s in enumerate(streams)] + [(int(rng.integers(k_n)), 300)]  # then 300 past the end
        dec = ans.Decoder(data)
        ours = [dec.decode(t, k, n) for k, n in runs]
        for a, b in zip(ours, _library(data, t, runs)):
            np.testing.assert_array_equal(a, b)
        for a, s in zip(ours, streams):
            np.testing.assert_array_equal(a, s)
        words = rng.integers(0, 1 << 32, int(rng.integers(1, 60)), dtype=np.uint64).astype(np.uint32)
        words[-1] |= 1 << int(rng.integers(32))  # the library refuses a last word of zero
        runs = [(int(rng.integers(k_n)), int(rng.integers(0, 400))) for _ in range(4)]
        dec = ans.Decoder(words.tobytes())
        for (k, n), b in zip(runs, _library(words.tobytes(), t, runs)):
            np.testing.assert_array_equal(dec.decode(t, k, n), b)


def test_cdf_is_the_library_quantisation():
    """Each row's 24-bit CDF is where the library's decoder moves from one symbol to
    the next, probed with one-word streams (the state's low 24 bits pick the symbol)."""
    t = entropy.IntTables(np.array([[60000, 5000, 535, 1, 0], [3, 1, 1, 7, 11]], np.uint32), np.array([4, 5]))
    cdf = t.cdf()
    for k, model in enumerate(t.coding_models()):
        n = int(t.size[k])
        assert cdf[k, 0] == 0 and cdf[k, n] == 1 << ans.PRECISION and np.all(np.diff(cdf[k, : n + 1].astype(np.int64)) > 0)
        for i in range(1, n):
            for q, want in ((int(cdf[k, i]) - 1, i - 1), (int(cdf[k, i]), i)):
                coder = constriction.stream.stack.AnsCoder(np.array([q | 1 << ans.PRECISION], np.uint32))
                assert coder.decode(model) == want
    assert cdf[0].tolist()[:5] == [
        0,
        ((60000 * ((1 << 24) - 4)) >> 16) + 1,
        ((65000 * ((1 << 24) - 4)) >> 16) + 2,
        ((65535 * ((1 << 24) - 4)) >> 16) + 3,
        1 << 24,
    ]


def test_malformed_sections():
    t = entropy.IntTables.from_counts(np.array([[5, 3, 1, 1]]))
    with pytest.raises(CorruptStreamError, match="32-bit words"):
        ans.Decoder(b"\x01\x02\x03")
    with pytest.raises(CorruptStreamError, match="zero word"):
        ans.Decoder(b"\x05\x00\x00\x00" + b"\x00" * 4)
    np.testing.assert_array_equal(ans.Decoder(b"").decode(t, 0, 3), _library(b"", t, [(0, 3)])[0])  # empty: as the library


def test_decoder_state_crosses_calls():
    """A state of 2**63 or more survives between runs (it is kept as uint64: a
    Python int could not cross into compiled code), so decoding run by run
    equals the library's decoding at once."""
    rng = np.random.default_rng(3)
    t = entropy.IntTables.from_counts(rng.exponential(1.0, (1, 50)) ** 3)
    words = rng.integers(0, 1 << 32, 40, dtype=np.uint64).astype(np.uint32)
    words[-1] |= 1 << 31  # the first state is at least 2**63
    dec = ans.Decoder(words.tobytes())
    assert int(dec.st[0]) >= 1 << 63
    want = _library(words.tobytes(), t, [(0, 700)])[0]
    got = np.concatenate([dec.decode(t, 0, part.size) for part in np.array_split(want, 7)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("quality", [1, 8])
def test_float_products_equal_the_integer_sums(quality):
    """ContextTables.predict's float64 matrix products give the int64 loop's
    activities and means exactly, at the bound (|value| = MAX_LATENT), so the
    encoder writes the same bytes as before."""
    ct = zoo.load_model().context_tables(quality)
    m = ct.order.size
    rng = np.random.default_rng(quality)
    h, w = 9, 11
    v = rng.integers(-3, 4, (m, h * w)).astype(np.int64)
    v[:, ::7] = rng.choice([-entropy.MAX_LATENT, entropy.MAX_LATENT], (m, v[:, ::7].shape[1]))
    act, mean = ct.predict(v, h, w)
    mag = np.abs(v)
    nb_v, nb_mag = context.neighbours4(v, h, w), context.neighbours4(mag, h, w)
    second = context.pass_map(h, w, ct.passes)[None, :].astype(bool)
    want_act = context._predict(ct.wmag, mag, nb_mag, 0, m) + ct.wmag[:, 2 * m : 2 * m + 1] * nb_mag * second
    want_acc = context._predict(ct.wmean, v, nb_v, 0, m) + ct.wmean[:, 2 * m : 2 * m + 1] * nb_v * second
    np.testing.assert_array_equal(act, want_act)
    np.testing.assert_array_equal(mean, context.round_shift(want_acc))
    assert np.abs(want_acc).max() > 1 << 32  # beyond what float32 or int32 would hold exactly


def test_whole_latent_decode_is_one_call(monkeypatch):
    """The context decode makes no per-run Python calls: the run-by-run decoder
    is never used, and the latent still comes back exactly (three tiles, escapes)."""
    ct = zoo.load_model().context_tables(4)
    rng = np.random.default_rng(5)
    y = rng.integers(-4, 5, (70, 130, ct.order.size)).astype(np.int32)
    y[3, 65, :] = 9000  # escapes, in the second tile
    params, sections = context.code_latent(ct, y)
    assert params["escapes"] > 0
    monkeypatch.setattr(ans.Decoder, "decode_run", lambda *a, **k: pytest.fail("per-run decoding"))
    out = context.decode_latent(ct, params, sections, y.shape[:2])
    np.testing.assert_array_equal(out.reshape(y.shape), y)
    short = {**params, "escapes": params["escapes"] - 1}
    with pytest.raises(CorruptStreamError):
        context.decode_latent(ct, short, [sections[0], entropy.pack_varints(np.full(params["escapes"] - 1, 9000))], y.shape[:2])


def test_runs_outside_the_tables_are_refused():
    """The compiled loop reads the tables unchecked, so the rows are checked first
    (they may come from a stream: near-lossless version 1's table choices)."""
    t = entropy.IntTables.from_counts(np.array([[5, 3, 1, 1], [1, 1, 1, 1]]))
    dec = ans.Decoder(entropy.encode_symbols([np.array([0, 1])], t))
    for first, counts, rows in ((2, [1], None), (0, [1], [-1]), (0, [1, 1], [0]), (0, [-1], None)):
        with pytest.raises(CorruptStreamError, match="out of range"):
            dec.decode_run(t, first, counts, rows=rows)
