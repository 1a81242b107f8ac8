"""`python -m cli`: the same command as the installed `reset-access`."""

import sys

from cli.app import main

sys.exit(main())
