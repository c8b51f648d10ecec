"""``python -m sidecar --kind mes|crm --upstream URL …`` (see ``docs/sidecar.md``)."""

import sys

from sidecar.cli import main

sys.exit(main())
