"""Entry script of the bundled `rigdeck` executable: the `main` of the installed command."""

import multiprocessing
import sys

from app.cli.main import main

# A worker process of a large library scan starts this executable again: let it be one.
multiprocessing.freeze_support()
sys.exit(main())
