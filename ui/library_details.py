"""The Library page's details panel: everything the library knows about one entry.

The labelled fields come from `app.library.display` (the same rows `rigdeck show`
prints), so the CLI and the window never disagree. For an adapter the panel also lists
each model in the library with whether the adapter fits it, and why not.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.library.compat import Compatibility
from app.library.display import display_fields
from app.library.entries import Adapter, Entry, Model
from ui.library_table import ERROR_COLOUR, INCOMPLETE_COLOUR, entry_name

_VERDICTS = {
    True: ("✓", "fits", "#2e7d32"),
    False: ("✗", "does not fit", ERROR_COLOUR.name()),
    None: ("?", "unknown", INCOMPLETE_COLOUR.name()),
}


def _fields_table(rows: Sequence[tuple[str, str]], entry: Entry) -> str:
    cells = []
    for label, text in rows:
        sub = label.startswith("  ")  # a per-tensor-type line under Quantisation
        style = ' style="padding-left:16px"' if sub else ""
        value = escape(text)
        if label == "Status" and (entry.error or not entry.complete):
            colour = ERROR_COLOUR if entry.error else INCOMPLETE_COLOUR
            value = f'<span style="color:{colour.name()}"><b>{value}</b></span>'
        cells.append(
            f"<tr><td{style}><b>{escape(label.strip())}</b></td>"
            f'<td style="padding-left:10px">{value}</td></tr>'
        )
    return f'<table cellspacing="2">{"".join(cells)}</table>'


def _compat_html(compat: Sequence[tuple[Entry, Compatibility]]) -> str:
    html = ["<b>Compatibility with the models in the library</b>"]
    if not compat:
        html.append("<p>No models in the library to check against.</p>")
        return "".join(html)
    items = []
    for model, verdict in compat:
        mark, word, colour = _VERDICTS[verdict.fits]
        items.append(
            f'<tr><td style="color:{colour}"><b>{mark}</b></td>'
            f"<td><b>{escape(entry_name(model))}</b>: "
            f'<span style="color:{colour}">{word}</span> — {escape(verdict.reason)}</td></tr>'
        )
    html.append(f'<table cellspacing="3">{"".join(items)}</table>')
    return "".join(html)


def details_html(entry: Entry, compat: Sequence[tuple[Entry, Compatibility]] = ()) -> str:
    """The entry's fields in two columns; for an adapter, its compatibility beside them."""
    rows = display_fields(entry)
    if isinstance(entry, Adapter):
        left, right = _fields_table(rows, entry), _compat_html(compat)
    else:
        half = (len(rows) + 1) // 2
        while 0 < half < len(rows) and rows[half][0].startswith("  "):
            half += 1  # keep the per-tensor-type lines with their Quantisation row
        left, right = _fields_table(rows[:half], entry), _fields_table(rows[half:], entry)
    return (
        '<table width="100%"><tr>'
        f'<td width="50%" valign="top">{left}</td>'
        f'<td width="50%" valign="top" style="padding-left:24px">{right}</td>'
        "</tr></table>"
    )


class LibraryDetailsPanel(QWidget):
    """The selected entry's title, its actions and its details (or a hint when none)."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.title_label = QLabel()
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title_label.setFont(font)
        top.addWidget(self.title_label, 1)
        self.fit_button = QPushButton("Fit…")
        self.fit_button.setToolTip("Open the Fit page with this model: will it fit your GPUs?")
        self.start_button = QPushButton("Start…")
        self.start_button.setToolTip("Start a backend serving this model")
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.setToolTip("Open the folder that holds it in the file manager")
        for button in (self.fit_button, self.start_button, self.folder_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        layout.addWidget(self.text, 1)
        self.entry: Entry | None = None
        self.show_entry(None)

    def show_entry(
        self, entry: Entry | None, compat: Sequence[tuple[Entry, Compatibility]] = ()
    ) -> None:
        """Show `entry` (None: a hint to pick one); `compat` is for adapters."""
        self.entry = entry
        if entry is None:
            self.title_label.setText("Nothing selected")
            self.text.setHtml("<p>Pick a model or an adapter to see what it holds.</p>")
        else:
            self.title_label.setText(entry_name(entry))
            self.text.setHtml(details_html(entry, compat))
        usable_model = isinstance(entry, Model) and entry.error is None
        self.fit_button.setEnabled(usable_model)
        self.start_button.setEnabled(usable_model)
        self.folder_button.setEnabled(entry is not None)
