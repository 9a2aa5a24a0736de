"""Test-run settings that change no result, only how long the suite takes.

JAX compiles a jitted function again for each new trainer or net the tests build, even when the computation is one
it has compiled before (the suite builds dozens of tiny ones). A persistent compilation cache, kept in a temporary
folder for this process only, lets an identical computation be compiled once: XLA keys it by the computation itself,
so a hit is the executable a fresh compile would make. Each test process (pytest-xdist's workers) keeps its own
folder; processes that the tests start (the CLI, determinism across processes) compile on their own. Measured on
2 cores, one process: `tests/test_model.py` 281 s without it, 162 s with it; the whole suite 710 s (without its
doctests), then 590 s (with them).
"""

import atexit
import shutil
import tempfile

import jax

_CACHE = tempfile.mkdtemp(prefix="nkcodec-test-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
