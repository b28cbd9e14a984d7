"""`python -m app` is the `rigdeck` command."""

import sys

from app.cli.main import main

sys.exit(main())
