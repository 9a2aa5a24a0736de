"""Offline fitting: training the nets (:mod:`.train`), the context tables (:mod:`.context_tables`),
the exact synthesis' integer parameters (:mod:`.exact`) and the lossless coder's prior
(:mod:`.lossless_prior`).  The library never imports this package."""
