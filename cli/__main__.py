import sys

from cli.reset_access import main

sys.exit(main())
