"""A short run of the fuzzing harness (python -m nkcodec fuzz) over every fixture:
mutated streams may only decode, raise CorruptStreamError or RetiredModelError."""

import numpy as np

from nkcodec.format.container import unpack_container
from nkcodec.tools import fuzz

from .common import FIXTURES


def test_mutated_fixtures_raise_only_corrupt_stream_error():
    corpus = fuzz.load_corpus(FIXTURES)
    counts, failures = fuzz.run(corpus, 3000, seed=1, jobs=2, time_limit=30.0, memory_mb=4096)
    assert sum(counts[k] for k in fuzz.GOOD) == 3000
    assert counts[fuzz.CORRUPT] > 1000 and counts[fuzz.OK] > 0  # the mutants reach past the CRC, some stay valid
    # timing is the benchmark's business (python -m nkcodec fuzz): "slow" is not asserted here, hangs are
    assert [f for f in failures if f[2] != "slow"] == []


def test_cases_are_reproducible_and_mostly_resealed():
    corpus = fuzz.load_corpus(FIXTURES)
    a = [fuzz.case(corpus, 7, i) for i in range(200)]
    assert a == [fuzz.case(corpus, 7, i) for i in range(200)]
    resealed = sum(d[-4:] == fuzz.reseal(d)[-4:] for _, d in a)
    assert 150 < resealed < 200  # one in 16 keeps its old CRC, to exercise the check
    parsed = 0
    for _, d in a:
        try:
            unpack_container(d)
            parsed += 1
        except ValueError:
            pass
    assert parsed > 20  # structure-aware mutants get through the container's own checks


def test_structure_mutations_touch_params_and_sections():
    corpus = dict(fuzz.load_corpus(FIXTURES))
    data = corpus["context_v1_model6.nkc"]
    base = fuzz.split(data)
    changed = {"header": 0, "params": 0, "sections": 0}
    for i in range(300):
        out = fuzz.mutate_structure(data, np.random.default_rng(i))
        parts = fuzz.split(out) if out else None
        if parts is None:
            continue
        changed["header"] += parts[0][:-1] != base[0][:-1]
        changed["params"] += parts[1] != base[1]
        changed["sections"] += parts[2] != base[2]
    assert min(changed.values()) > 30


def test_a_case_that_kills_its_worker_is_a_crash_and_the_run_goes_on(monkeypatch):
    corpus = fuzz.load_corpus(FIXTURES)[:3]
    monkeypatch.setenv("NKCODEC_FUZZ_ABORT", "37")  # the worker aborts (as a native crash would) on case 37
    counts, failures = fuzz.run(corpus, 120, seed=3, jobs=2, time_limit=30.0, chunk=20)
    assert [(i, kind) for i, _, kind, _ in failures] == [(37, "crash")]
    assert counts["crash"] == 1 and sum(counts[k] for k in fuzz.GOOD) == 119
