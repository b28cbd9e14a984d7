"""Entry script of the bundled `rigdeck` executable: the same `main` as the pip-installed command."""

import sys

from app.cli.main import main

sys.exit(main())
