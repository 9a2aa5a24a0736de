"""Fuzzing the decoder: ``python -m nkcodec fuzz``.

A decoder is an attack surface, so every stream, however hostile, must end
in one of three ways: an image, :class:`~nkcodec.errors.CorruptStreamError`,
or :class:`~nkcodec.errors.RetiredModelError` (a stream of a model this build
no longer ships).  This module mutates the committed fixtures the way a
hostile sender would and checks that promise, plus time and memory:

* **byte-level** mutations: bytes flipped, set, inserted, deleted,
  duplicated or cut;
* **structure-aware** ones: a header field set to a boundary value, a value
  anywhere in the params object replaced by one of another type or range (or
  deleted, or a key added), sections dropped, duplicated, swapped, cut or
  grown;

and, but for one mutation in 16, the CRC32 is recomputed so that the parsers
behind the checksum are reached.  Case ``i`` of seed ``s`` is drawn from
``numpy.random.default_rng([s, i])`` alone, so any case is reproduced by its
two numbers (``--seed S --case I``).

Each stream is decoded in a worker process whose address space is capped
with ``resource.setrlimit(RLIMIT_AS)`` (an allocation past the cap is a
``MemoryError`` there) and whose decode is timed (over ``--time-limit``
seconds: *slow*; ten times that: the worker is interrupted, *hang*).  The
run prints the outcome counts and each distinct failure (exception type and
the line that raised it) with a reproducer.

With ``--engine atheris`` (``pip install atheris``) the same mutators drive
libFuzzer instead: coverage-guided, open-ended, for finding new paths rather
than counting.

Examples
--------
>>> data = bytes.fromhex("4e4b430101000000010000000100010000000000020000007b7d0000")
>>> reseal(data)[:-4] == data[:-4]
True
"""

from __future__ import annotations

import os
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from ..config import cpu_count

__all__ = ["mutate", "reseal", "load_corpus", "decode_outcome", "run", "main_fuzz"]

OK, CORRUPT, RETIRED = "decoded", "CorruptStreamError", "RetiredModelError"
GOOD = (OK, CORRUPT, RETIRED)
_U32 = struct.Struct("<I")


def reseal(data: bytes) -> bytes:
    """``data`` with its last 4 bytes replaced by the CRC32 of the rest."""
    body = data[:-4] if len(data) >= 4 else data
    return body + _U32.pack(zlib.crc32(body))


def load_corpus(folder) -> list:
    """The ``.nkc`` files of ``folder`` as [(name, bytes)], sorted by name."""
    paths = sorted(Path(folder).glob("*.nkc"))
    if not paths:
        raise ValueError(f"no .nkc files in {folder}")
    return [(p.name, p.read_bytes()) for p in paths]


def default_corpus() -> list:
    """The repository's ``tests/fixtures`` where the current folder has them, else streams
    of every preset made here from a crop of a shipped sample (so that an installed wheel
    can fuzz too)."""
    if Path("tests/fixtures").is_dir():
        return load_corpus("tests/fixtures")
    from ..codec import compress
    from ..imageio import sample_images
    from ..presets import PRESETS

    crop = next(iter(sample_images().values()))[:40, :56]
    gray, rgba = crop[..., 1], np.dstack([crop, crop[..., :1]])
    corpus = []
    for name in sorted(PRESETS):
        options = {"k": 16} if name in ("palette", "paper") else {}
        for label, image in (("rgb", crop), ("gray", gray), ("rgba", rgba)):
            corpus.append((f"{name}-{label}.nkc", compress(image, 3, name, **options)))
    corpus.append(("flat.nkc", compress(np.zeros((24, 24, 3), np.uint8), 3)))
    return corpus


# --- mutators -------------------------------------------------------------------

_INTS = [0, 1, -1, 2, 3, 7, 8, 9, 15, 16, 255, 256, 65535, 65536, 1 << 31, (1 << 31) - 1, -(1 << 31), 1 << 32, 1 << 53, 1 << 64, -(1 << 64)]


def _value(rng):
    """A JSON value of a random type, often at a boundary."""
    k = int(rng.integers(9))
    if k == 0:
        return _INTS[int(rng.integers(len(_INTS)))]
    if k == 1:
        return int(rng.integers(-1000, 1000))
    if k == 2:
        return [0.5, -0.0, 1e308, -1e-300, 3.0][int(rng.integers(5))]
    if k == 3:
        return bool(rng.integers(2))
    if k == 4:
        return None
    if k == 5:
        return ["", "x", "1", "nan", "\u00e9" * 3][int(rng.integers(5))]
    if k == 6:
        return [_value(rng) for _ in range(int(rng.integers(3)))]
    if k == 7:
        return {"k": _value(rng)}
    return int(rng.integers(-(1 << 40), 1 << 40))


def _paths(obj, prefix=()):
    """Every (container, key) pair of a JSON tree."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield obj, k
        yield from _paths(v, prefix + (k,))


def split(data: bytes):
    """A container's (fixed header fields, params object, sections), or None if it does not parse."""
    from ..errors import CorruptStreamError
    from ..format.container import params_object, split_raw

    raw = split_raw(data)
    if raw is None:
        return None
    fields, params, sections = raw
    try:
        return fields, params_object(params, fields[1]), sections
    except CorruptStreamError:
        return None


def join(fields, params, sections) -> bytes:
    """A container from :func:`split`'s parts (a params object of any shape), its CRC left
    zero; None if the params have no form in the container's version."""
    from ..format.container import join_raw, params_bytes

    try:
        p = params_bytes(params, 1 if fields[1] == 1 else 2)  # the layout join_raw writes for that version byte
    except ValueError:  # a value the compact form has no place for (a NaN): no structural mutation then
        return None
    return join_raw([*fields[:-1], len(p)], p, sections) + b"\0\0\0\0"


def _mutate_bytes(data: bytearray, rng) -> bytearray:
    n = len(data)
    op = int(rng.integers(7)) if n else 2  # nothing to change in an empty one: insert
    i = int(rng.integers(n)) if n else 0
    if op == 0:  # flip bits
        data[i] ^= int(rng.integers(1, 256))
    elif op == 1:  # set to a boundary byte
        data[i] = [0, 1, 0x7F, 0x80, 0xFF][int(rng.integers(5))]
    elif op == 2:  # insert random bytes
        data[i:i] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    elif op == 3:  # delete a range
        del data[i : i + int(rng.integers(1, 17))]
    elif op == 4:  # duplicate a range
        j = min(n, i + int(rng.integers(1, 33)))
        data[j:j] = data[i:j]
    elif op == 5:  # cut
        del data[i:]
    else:  # overwrite 4 bytes with a boundary u32
        v = _INTS[int(rng.integers(len(_INTS)))] & 0xFFFFFFFF
        data[i : i + 4] = _U32.pack(v)
    return data


def mutate_structure(data: bytes, rng):
    parts = split(data)
    if parts is None:
        return None
    fields, params, sections = parts
    op = int(rng.integers(4))
    if op == 0:  # a header field: height, width, channels, flags, preset, quality, model id
        f = int(rng.integers(2, 9))
        limits = {2: 1 << 32, 3: 1 << 32, 4: 256, 5: 256, 6: 256, 7: 256, 8: 1 << 16}
        v = [0, 1, 2, 3, 4, 5, 8, 9, 16, 255, 65535, 65536, 1 << 20, (1 << 32) - 1][int(rng.integers(14))]
        fields[f] = v % limits[f] if rng.integers(2) else int(rng.integers(limits[f]))
    elif op == 1:  # a params value: replaced, deleted, or a key added
        where = list(_paths(params))
        kind = int(rng.integers(4))
        if where and kind < 3:
            obj, key = where[int(rng.integers(len(where)))]
            if kind == 2 and isinstance(obj, dict):
                del obj[key]
            else:
                obj[key] = _value(rng)
        else:
            target = params
            dicts = [o[k] for o, k in where if isinstance(o[k], dict)]
            if dicts and rng.integers(2):
                target = dicts[int(rng.integers(len(dicts)))]
            target[["zz", "v", "k", "escapes", "image"][int(rng.integers(5))]] = _value(rng)
    elif op == 2:  # the section list
        kind = int(rng.integers(4))
        if sections and kind == 0:
            del sections[int(rng.integers(len(sections)))]
        elif sections and kind == 1:
            sections.insert(int(rng.integers(len(sections) + 1)), sections[int(rng.integers(len(sections)))])
        elif len(sections) > 1 and kind == 2:
            i, j = rng.choice(len(sections), 2, replace=False)
            sections[i], sections[j] = sections[j], sections[i]
        else:
            sections.append(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes())
    else:  # one section's content, byte-level
        if not sections:
            return None
        i = int(rng.integers(len(sections)))
        sections[i] = bytes(_mutate_bytes(bytearray(sections[i]), rng))
    return join(fields, params, sections)


def mutate(data: bytes, rng) -> bytes:
    """One hostile variant of a valid stream: 1-3 byte-level or structure-aware
    mutations; the CRC is recomputed but for one stream in 16."""
    out = bytes(data)
    for _ in range(int(rng.integers(1, 4))):
        m = mutate_structure(out, rng) if rng.integers(2) else None
        out = m if m is not None else bytes(_mutate_bytes(bytearray(out[:-4]), rng)) + out[-4:]
    return out if rng.integers(16) == 0 else reseal(out)


def case(corpus: list, seed: int, i: int):
    """Case ``i`` of ``seed``: (fixture name, mutated bytes)."""
    rng = np.random.default_rng([seed, i])
    name, data = corpus[int(rng.integers(len(corpus)))]
    return name, mutate(data, rng)


# --- decoding under watch ---------------------------------------------------------


class _Hang(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def decode_outcome(data: bytes, hang_seconds: float | None = None):
    """Decode ``data``: (outcome, seconds, detail).  ``outcome`` is one of
    :data:`GOOD` or a failure: ``"hang"`` or an exception's type name, with
    ``detail`` naming where it was raised."""
    import signal

    from ..codec import decompress
    from ..errors import CorruptStreamError, RetiredModelError

    if hang_seconds:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
    t = time.perf_counter()
    try:
        decompress(data)
        outcome, detail = OK, ""
    except RetiredModelError:
        outcome, detail = RETIRED, ""
    except CorruptStreamError:
        outcome, detail = CORRUPT, ""
    except _Hang:
        outcome, detail = "hang", ""
    except Exception as e:  # what the harness is looking for
        frame = traceback.extract_tb(e.__traceback__)[-1]
        outcome, detail = type(e).__name__, f"{Path(frame.filename).name}:{frame.lineno}: {str(e)[:120]}"
    finally:
        if hang_seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, time.perf_counter() - t, detail


_STATE = {}


def _worker_init(corpus, memory_mb: int, markers: str) -> None:
    import resource
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
    if memory_mb:
        cap = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    _STATE["corpus"] = corpus
    _STATE["marker"] = Path(markers) / str(os.getpid())
    for _, data in corpus:  # load the models and compile: not the mutants' time
        decode_outcome(data)


def _work(seed: int, start: int, stop: int, time_limit: float, skip: frozenset):
    corpus, marker = _STATE["corpus"], _STATE["marker"]
    counts, failures = Counter(), []
    for i in range(start, stop):
        if i in skip:  # crashed a worker before: counted already
            continue
        marker.write_text(str(i))  # if this process dies, the parent learns which case killed it
        if i == int(os.environ.get("NKCODEC_FUZZ_ABORT", -1)):  # the harness's own test of a native crash
            os.abort()
        name, data = case(corpus, seed, i)
        outcome, seconds, detail = decode_outcome(data, hang_seconds=10 * time_limit)
        counts[outcome] += 1
        if outcome in GOOD and seconds > time_limit:
            counts["slow"] += 1
            outcome, detail = "slow", f"{seconds:.2f} s"
        if outcome not in GOOD:
            failures.append((i, name, outcome, detail))
    return counts, failures


def _kills_a_worker(corpus, seed: int, i: int, time_limit: float, memory_mb: int) -> bool:
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with tempfile.TemporaryDirectory() as markers:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init, initargs=(corpus, memory_mb, markers)) as ex:
            try:
                ex.submit(_work, seed, i, i + 1, time_limit, frozenset()).result()
                return False
            except BrokenProcessPool:
                return True


def run(corpus: list, n: int, seed: int = 0, jobs: int = 1, time_limit: float = 2.0, memory_mb: int = 4096, chunk: int = 250, progress=None):
    """Decode ``n`` mutated streams in ``jobs`` worker processes: (outcome counts,
    failures).  A case that kills its worker (a native crash, an abort) is a
    ``"crash"`` failure: the pool is restarted and the other cases still run."""
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    counts, failures, crashed = Counter(), [], set()
    todo = {(a, min(a + chunk, n)) for a in range(0, n, chunk)}
    ctx = multiprocessing.get_context("spawn")
    while todo:
        with tempfile.TemporaryDirectory() as markers:
            ex = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(corpus, memory_mb, markers))
            futures = {ex.submit(_work, seed, a, b, time_limit, frozenset(crashed)): (a, b) for a, b in sorted(todo)}
            try:
                for f in as_completed(futures):
                    c, fl = f.result()
                    counts.update(c)
                    failures += fl
                    todo.discard(futures[f])
                    if progress:
                        progress(sum(counts.values()) - counts["slow"])
            except BrokenProcessPool:
                # the pool stops every worker when one dies: each one's last case is a suspect, tried alone
                suspects = {int(m.read_text()) for m in Path(markers).iterdir() if m.read_text()} - crashed
                found = [i for i in sorted(suspects) if _kills_a_worker(corpus, seed, i, time_limit, memory_mb)]
                if not found:
                    raise
                for i in found:
                    crashed.add(i)
                    counts["crash"] += 1
                    failures.append((i, case(corpus, seed, i)[0], "crash", "the worker process died"))
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
            finally:
                ex.shutdown(wait=True, cancel_futures=True)
    return counts, sorted(failures)


def _atheris(corpus: list, args) -> int:  # pragma: no cover - needs the optional atheris
    """libFuzzer through atheris, coverage-guided, the fixtures as its seed corpus
    and our mutators as its custom mutator; stops at the first failure and
    writes it to ``crash-*`` as libFuzzer does."""
    import tempfile

    try:
        import atheris
    except ImportError:
        raise ValueError("--engine atheris needs atheris: pip install atheris") from None
    from .. import codec
    from ..coding import context, entropy, nearlossless_v1, nearlossless_v2, nearlossless_v4, nearlossless_v5, rle
    from ..errors import CorruptStreamError, RetiredModelError
    from ..format import container, schema

    for module in (
        codec,
        container,
        context,
        entropy,
        nearlossless_v1,
        nearlossless_v2,
        nearlossless_v4,
        nearlossless_v5,
        rle,
        schema,
    ):  # coverage feedback from the decoder
        for fn in vars(module).values():
            if callable(fn) and getattr(fn, "__module__", None) == module.__name__ and hasattr(fn, "__code__"):
                atheris.instrument_func(fn)

    def one(data: bytes) -> None:
        try:
            codec.decompress(data)
        except (CorruptStreamError, RetiredModelError):
            pass

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        out = mutate(data, np.random.default_rng(seed))
        return out if len(out) <= max_size else reseal(out[: max_size - 4] + b"\0\0\0\0")

    with tempfile.TemporaryDirectory() as seeds:
        for name, data in corpus:
            Path(seeds, name).write_bytes(data)
        flags = [
            f"-seed={args.seed + 1}",
            f"-runs={args.mutations}",
            f"-timeout={max(1, round(args.time_limit))}",
            f"-rss_limit_mb={args.memory_mb}",
            "-max_len=65536",
        ]
        atheris.Setup([sys.argv[0], *flags, *args.libfuzzer, seeds], one, custom_mutator=mutator)
        atheris.Fuzz()
    return 0


def main_fuzz(args) -> int:
    """The ``fuzz`` command (see ``python -m nkcodec fuzz --help``)."""
    corpus = load_corpus(args.fixtures) if args.fixtures else default_corpus()
    if args.engine == "atheris":
        return _atheris(corpus, args)
    if args.case is not None:  # reproduce one case here, with its traceback
        name, data = case(corpus, args.seed, args.case)
        print(f"case {args.case} of seed {args.seed}: {name}, {len(data)} bytes", flush=True)
        if args.save:
            Path(args.save).write_bytes(data)
        from ..codec import decompress
        from ..errors import CorruptStreamError, RetiredModelError

        try:
            decompress(data)
            print("decoded")
        except (CorruptStreamError, RetiredModelError) as e:
            print(f"{type(e).__name__}: {e}")
        return 0
    jobs = args.jobs or cpu_count()
    t = time.perf_counter()
    last = [0.0]

    def progress(done):
        if sys.stderr.isatty() and time.perf_counter() - last[0] > 1:
            last[0] = time.perf_counter()
            print(f"\r{done}/{args.mutations}", end="", file=sys.stderr, flush=True)

    counts, failures = run(corpus, args.mutations, args.seed, jobs, args.time_limit, args.memory_mb, progress=progress)
    seconds = time.perf_counter() - t
    print(f"\n{args.mutations} mutated streams of {len(corpus)} fixtures, seed {args.seed}, {jobs} processes, {seconds:.0f} s")
    for k in (*GOOD, "slow", "hang", "crash"):
        print(f"  {k:<20} {counts.get(k, 0)}")
    for k, v in sorted(counts.items()):
        if k not in (*GOOD, "slow", "hang", "crash"):
            print(f"  {k:<20} {v}")
    distinct = {}
    for i, name, outcome, detail in failures:
        distinct.setdefault((outcome, detail.split(": ")[0] if outcome != "slow" else ""), []).append((i, name, detail))
    for (outcome, where), cases in distinct.items():
        i, name, detail = cases[0]
        print(f"FAIL {outcome} x{len(cases)} ({name}): {detail}")
        print(f"  reproduce: python -m nkcodec fuzz --fixtures {args.fixtures} --seed {args.seed} --case {i}")
    if args.json:
        from .evaluate import write_json

        write_json(
            {
                "mutations": args.mutations,
                "seed": args.seed,
                "fixtures": len(corpus),
                "seconds": seconds,
                "counts": dict(counts),
                "failures": [list(f) for f in failures[:1000]],
            },
            args.json,
        )
    return 1 if failures else 0
