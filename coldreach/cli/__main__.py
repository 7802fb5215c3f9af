"""`python -m coldreach.cli`: the same as the `coldreach` console script."""

import sys

from coldreach.cli import main

sys.exit(main())
