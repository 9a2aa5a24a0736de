"""``python -m nkcodec``: the command line (:mod:`nkcodec.tools.cli`)."""

import sys

from nkcodec.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
