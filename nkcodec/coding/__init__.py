"""The coding stages: integers to bytes and back, with no JAX.

- :mod:`.entropy`: ANS coding with integer frequency tables; :mod:`.varint`: zigzag LEB128.
- :mod:`.rle`: NK-RLE, the paper's ``[value, key = run**2]`` pairs (Numba).
- :mod:`.kmeans`: FAISS k-means (palette, latent clustering).
- :mod:`.context`: context coding of the quantised latent (the ``context`` preset).
- :mod:`.latent_codecs`: how each learned preset codes its latent.
- :mod:`.flat_blocks`: constant 8x8 blocks, signalled and put back exactly.
- :mod:`.adaptive_filter`: an exact per-image filter after the synthesis.
- :mod:`.nearlossless_v1`: the residual over a learned base (near-lossless version 1, decodes old streams).
- :mod:`.nearlossless_v2`: the predictive bounded-error coder (near-lossless version 2, current).
"""
