"""Entry script of the console-less `rigdeck-gui.exe` (Windows): always opens the window."""

import sys

from app.cli.main import gui_main

sys.exit(gui_main())
