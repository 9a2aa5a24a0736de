"""The same image and options give the same bytes, and a stream the same pixels,
in separate processes and under different thread counts (XLA, Numba, OpenMP)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import hashlib
import nkcodec
from tests.test_learned import photo

img = photo((96, 130, 3), seed=5)
cases = [("default", {}), ("scalar", {}), ("palette", {"k": 32}), ("paper", {}), ("cluster", {}),
         ("near-lossless", {"max_error": 1}), ("default", {"effort": 1})]
for preset, options in cases:
    data = nkcodec.compress(img, 4, preset, **options)
    print(preset, hashlib.sha256(data).hexdigest(), hashlib.sha256(nkcodec.decompress(data).tobytes()).hexdigest())
"""

ROOT = Path(__file__).resolve().parents[1]


def _run(prefix=(), **env):
    out = subprocess.run(
        [*prefix, sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bytes_and_pixels_do_not_depend_on_the_process_or_threads():
    ref = _run()
    assert len(ref.splitlines()) == 7
    assert _run(OMP_NUM_THREADS="3", NUMBA_NUM_THREADS="2") == ref
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("taskset or a second core missing: the one-core run is not possible here")
    assert _run(("taskset", "-c", "0"), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1") == ref  # one core: XLA's pool shrinks too
