"""``python -m derive``: the same as the ``derive`` console script."""

import sys

from derive.cli import main

sys.exit(main())
