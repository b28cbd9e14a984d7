"""The startup reference: a bare PySide6 window holding one pyqtgraph plot.

Prints `shown <unix time>` once the window is up, then quits (as `rigdeck gui` does with
RIGDECK_STARTUP_PROBE=1).
"""

import sys
import time

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow


def main() -> int:
    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    plot = pg.PlotWidget()
    plot.plot([0, 1, 2, 3], [1, 3, 2, 4])
    window.setCentralWidget(plot)
    window.resize(1200, 780)
    window.show()

    def report() -> None:
        print(f"shown {time.time():.6f}", flush=True)
        app.quit()

    QTimer.singleShot(0, report)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
