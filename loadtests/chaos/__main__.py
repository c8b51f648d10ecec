"""``python -m loadtests.chaos``: see :mod:`loadtests.chaos.run`."""

from loadtests.chaos.run import main

raise SystemExit(main())
