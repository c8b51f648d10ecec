"""``python -m legacy_sim {mes,crm,crm-consumer,seed} …`` — see docs/legacy-sim.md."""

from legacy_sim.cli import main

raise SystemExit(main())
