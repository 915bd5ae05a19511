"""`python -m migration_abm` runs the command-line interface."""

from migration_abm.cli import main

raise SystemExit(main())
