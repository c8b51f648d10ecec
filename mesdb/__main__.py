"""``python -m mesdb …``."""

import sys

from mesdb.cli import main

sys.exit(main())
