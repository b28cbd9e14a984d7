"""Entry script of the console-less `rigdeck-gui.exe` (Windows): always opens the window."""

import multiprocessing
import sys

from app.cli.main import gui_main

# A worker process of a large library scan starts this executable again: let it be one.
multiprocessing.freeze_support()
sys.exit(gui_main())
