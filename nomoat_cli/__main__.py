"""`python -m nomoat_cli` runs the CLI, for environments without the `nomoat` script on PATH."""

from nomoat_cli.main import main

raise SystemExit(main())
