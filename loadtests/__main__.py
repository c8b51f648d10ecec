"""``python -m loadtests``: see :mod:`loadtests.runner`."""

from loadtests.runner import main

raise SystemExit(main())
