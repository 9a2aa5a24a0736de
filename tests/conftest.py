"""Test-run settings that change no result, only how long the suite takes.

JAX compiles every jitted function anew for each new trainer, since a trainer's optimizer (its schedule) is part
of the function's static arguments, even when the computation is the same one. The suite builds dozens of tiny
trainers and nets, so on 2 cores compiling was about a third of its time. A persistent compilation cache, kept in a
temporary folder for this run only, lets an identical computation be compiled once: XLA keys it by the computation
itself, so a cache hit is the executable a fresh compile would make. Processes that the tests start (the CLI,
determinism across processes) are left to compile on their own.
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
