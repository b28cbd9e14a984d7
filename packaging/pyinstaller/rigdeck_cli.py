"""Entry script of the bundled `rigdeck` executable: the `main` of the installed command."""

import sys

from app.cli.main import main

sys.exit(main())
