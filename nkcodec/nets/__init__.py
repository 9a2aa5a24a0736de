"""The learned transforms and running them.

- :mod:`.transforms`: the Flax NNX analysis and synthesis nets and the factorized prior.
- :mod:`.weights_file`: the shipped weights file (``.npz``): what ``export`` writes and a model reads.
- :mod:`.runtime`: :class:`~.runtime.ModelRuntime`, a loaded model run for coding (jitted, tiled, batched).
- :mod:`.exact_v1`, :mod:`.exact_v2`: bit-exact synthesis, float64 (version 1) and float32 (version 2, current).
- :mod:`.refine`: encoder-side refinement of the latent (``effort=1``).
"""
