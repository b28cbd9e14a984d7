"""The pages of the main window, in the order of the navigation rail."""

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QStyle, QWidget

from ui.pages.backends_page import backends_page
from ui.pages.chat_page import chat_page
from ui.pages.fit_page import fit_page
from ui.pages.library_page import library_page
from ui.pages.monitor_page import monitor_page
from ui.pages.roles_page import roles_page
from ui.pages.settings_page import SettingsPage
from ui.services import Services

SP = QStyle.StandardPixmap

PageFactory = Callable[[Services, Callable[[], None]], QWidget]
"""Builds a page from the services and a callback that opens the Settings page."""


@dataclass(frozen=True)
class PageSpec:
    name: str
    title: str
    icon: QStyle.StandardPixmap
    build: PageFactory


PAGES: tuple[PageSpec, ...] = (
    PageSpec("library", "Library", SP.SP_DirIcon, library_page),
    PageSpec("fit", "Fit", SP.SP_FileDialogDetailedView, fit_page),
    PageSpec("backends", "Backends", SP.SP_ComputerIcon, backends_page),
    PageSpec("monitor", "Monitor", SP.SP_DriveHDIcon, monitor_page),
    PageSpec("chat", "Chat", SP.SP_MessageBoxQuestion, chat_page),
    PageSpec("roles", "Roles", SP.SP_FileDialogContentsView, roles_page),
    PageSpec("settings", "Settings", SP.SP_FileDialogListView, lambda s, _: SettingsPage(s)),
)

PAGE_NAMES = tuple(spec.name for spec in PAGES)
