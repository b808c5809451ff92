"""`python -m wispd ...` is `wispd ...`."""

import sys

from wispd.cli.daemon import main

sys.exit(main())
