"""The ``.nkc`` format: the container (:mod:`.container`) and the check of each stream's
parameters (:mod:`.schema`).  Bytes in and out, checked; it imports nothing above ``errors``."""
