"""The app icon and the standard icons of the navigation rail."""

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

from resources import resource_path


def app_icon() -> QIcon:
    return QIcon(str(resource_path("icons", "rigdeck.svg")))


def standard_icon(pixmap: QStyle.StandardPixmap) -> QIcon:
    return QApplication.style().standardIcon(pixmap)
