"""The pages of the main window, in the order of the navigation rail.

A page's module is imported when the page is first built, not here: the window builds
only the page it opens with, so start-up does not pay for the others.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QStyle, QWidget

from ui.services import Services

SP = QStyle.StandardPixmap

PageFactory = Callable[[Services, Callable[[], None]], QWidget]
"""Builds a page from the services and a callback that opens the Settings page."""


@dataclass(frozen=True)
class PageSpec:
    name: str
    title: str
    icon: QStyle.StandardPixmap
    factory: str
    """`module:function`, a PageFactory."""

    def build(self, services: Services, open_settings: Callable[[], None]) -> QWidget:
        module, function = self.factory.split(":")
        factory: PageFactory = getattr(importlib.import_module(module), function)
        return factory(services, open_settings)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("library", "Library", SP.SP_DirIcon, "ui.pages.library_page:library_page"),
    PageSpec("fit", "Fit", SP.SP_FileDialogDetailedView, "ui.pages.fit_page:fit_page"),
    PageSpec("backends", "Backends", SP.SP_ComputerIcon,
             "ui.pages.backends_page:backends_page"),
    PageSpec("monitor", "Monitor", SP.SP_DriveHDIcon, "ui.pages.monitor_page:monitor_page"),
    PageSpec("chat", "Chat", SP.SP_MessageBoxQuestion, "ui.pages.chat_page:chat_page"),
    PageSpec("roles", "Roles", SP.SP_FileDialogContentsView, "ui.pages.roles_page:roles_page"),
    PageSpec("bench", "Bench", SP.SP_MediaSeekForward, "ui.pages.bench_page:bench_page"),
    PageSpec("gateway", "Gateway", SP.SP_DriveNetIcon, "ui.pages.gateway_page:gateway_page"),
    PageSpec("settings", "Settings", SP.SP_FileDialogListView,
             "ui.pages.settings_page:settings_page"),
)

PAGE_NAMES = tuple(spec.name for spec in PAGES)
