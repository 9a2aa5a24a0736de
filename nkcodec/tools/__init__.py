"""Developer tools behind ``python -m nkcodec``: the command line (:mod:`.cli`), stage throughput
(:mod:`.bench`), rate-distortion evaluation (:mod:`.evaluate`), the decoder fuzzer (:mod:`.fuzz`)
and the viewer (:mod:`.view`).  The library never imports this package."""
