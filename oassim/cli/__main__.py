"""``python -m oassim.cli``: the same as the ``oassim`` console script."""

import sys

from oassim.cli import main

sys.exit(main())
