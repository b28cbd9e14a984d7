"""Light and dark colours: follow the system unless the user picked one."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def _dark_palette() -> QPalette:
    palette = QPalette()
    base, window, text = QColor(30, 32, 36), QColor(40, 43, 48), QColor(225, 228, 232)
    for role, color in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, window),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Highlight, QColor(64, 128, 216)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(110, 170, 255)),
        (QPalette.ColorRole.PlaceholderText, QColor(140, 144, 150)),
    ):
        palette.setColor(role, color)
    disabled = QColor(120, 124, 130)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def is_dark(choice: str) -> bool:
    """Whether `choice` (system, light, dark) means dark colours right now."""
    if choice == "system":
        return QApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    return choice == "dark"


def apply_theme(app: QApplication, choice: str) -> None:
    """Apply the Fusion style with light or dark colours for `choice`."""
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if is_dark(choice) else app.style().standardPalette())
