"""The placeholder a page shows until it has something: what will be here, what to set up."""

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

_TEXT_WIDTH = 540


class EmptyStateWidget(QWidget):
    """A centred icon, a title, a sentence on what the page shows and one on what it needs."""

    def __init__(
        self,
        icon: QIcon,
        title: str,
        what: str,
        needs: str,
        action: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        picture = QLabel()
        picture.setPixmap(icon.pixmap(64, 64))
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(picture)
        self.title_label = QLabel(title)
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title_label)
        self.what_label = self._paragraph(what)
        layout.addWidget(self.what_label, alignment=Qt.AlignmentFlag.AlignHCenter)
        self.needs_label = self._paragraph(needs)
        self.needs_label.setEnabled(False)  # drawn in the muted colour
        layout.addWidget(self.needs_label, alignment=Qt.AlignmentFlag.AlignHCenter)
        self.action_button: QPushButton | None = None
        if action is not None:
            label, callback = action
            self.action_button = QPushButton(label)
            self.action_button.clicked.connect(callback)
            layout.addWidget(self.action_button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(3)

    @staticmethod
    def _paragraph(text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # A fixed width and the height that width needs: wrapped text is never clipped.
        label.setFixedWidth(_TEXT_WIDTH)
        label.setMinimumHeight(label.heightForWidth(_TEXT_WIDTH))
        return label
