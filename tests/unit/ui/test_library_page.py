"""The Library page over a library of real files: rows, filter, sort, details, live updates."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QTableView
from pytestqt.qtbot import QtBot

from app.library.library import Library
from tests.journeys.conftest import choose_folder_when_asked
from tests.unit.app.library.builders import (
    HfModel,
    Shape,
    write_gguf,
    write_gguf_lora,
    write_hf_model,
    write_peft,
)
from ui.backend_start_dialog import BackendStartDialog
from ui.library_feed import LibraryFeed
from ui.library_table import ERROR_COLOUR, INCOMPLETE_COLOUR, LibraryTableModel
from ui.main_window import MainWindow
from ui.pages.fit_page import FitPage
from ui.pages.library_page import LibraryPage
from ui.services import Services

MODEL_NAMES = ["bad.gguf", "hf-model", "tiny-llama", "tiny-qwen3", "tiny-qwen3moe"]
ADAPTER_NAMES = ["pirate-lora.gguf", "sql-lora"]
WAIT_MS = 20_000
_H = Qt.Orientation.Horizontal


@pytest.fixture(autouse=True)
def _no_default_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's own library also looks in the HF cache, Ollama and LM Studio: empty ones."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    monkeypatch.setenv("LMSTUDIO_MODELS", str(tmp_path / "no-lmstudio"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Real files: dense and MoE GGUFs, a split GGUF, an HF folder, two adapters, a bad file."""
    root = tmp_path / "models"
    write_gguf(root / "dense.gguf")
    write_gguf(root / "moe.gguf", Shape(arch="qwen3moe", experts=4, experts_used=2))
    write_gguf(root / "split" / "big.gguf", Shape(arch="llama", layers=3, hidden=128),
               split_max_tensors=12)
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}
    write_hf_model(root / "hf-model", HfModel(extra_config={"rope_scaling": yarn}))
    write_peft(root / "sql-lora")
    write_gguf_lora(root / "pirate-lora.gguf")
    (root / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    return root


def _feed(services: Services, folders: list[Path], tmp_path: Path) -> LibraryFeed:
    library = Library(folders, include_defaults=False, index_path=tmp_path / "index.sqlite3")
    return LibraryFeed(library, services.tasks, services.settings, watch_interval_s=0.1)


@pytest.fixture
def feed(services: Services, folder: Path, tmp_path: Path) -> Iterator[LibraryFeed]:
    feed = _feed(services, [folder], tmp_path)
    yield feed
    feed.close()  # stops the watcher thread


def _page(qtbot: QtBot, services: Services, feed: LibraryFeed) -> LibraryPage:
    page = LibraryPage(services, feed)
    qtbot.add_widget(page)
    page.resize(1200, 760)
    page.show()
    return page


@pytest.fixture
def page(qtbot: QtBot, services: Services, feed: LibraryFeed) -> LibraryPage:
    """The page after its first scan."""
    page = _page(qtbot, services, feed)
    with qtbot.wait_signal(feed.scanning_changed, timeout=WAIT_MS):
        feed.start()
    qtbot.waitUntil(lambda: not feed.scanning, timeout=WAIT_MS)
    return page


def _column(view: QTableView, title: str) -> list[str]:
    model = view.model()
    col = next(c for c in range(model.columnCount()) if model.headerData(c, _H) == title)
    return [str(model.index(r, col).data()) for r in range(model.rowCount())]


def _column_index(view: QTableView, title: str) -> int:
    model = view.model()
    return next(c for c in range(model.columnCount()) if model.headerData(c, _H) == title)


def _row(view: QTableView, name: str) -> dict[str, str]:
    model = view.model()
    titles = [model.headerData(c, _H) for c in range(model.columnCount())]
    names = _column(view, "Name")
    r = names.index(name)
    return {t: str(model.index(r, c).data()) for c, t in enumerate(titles)}


def _details(page: LibraryPage) -> set[tuple[str, str]]:
    """The details' (label, value) pairs, as the panel shows them side by side."""
    lines = [line.strip() for line in page.details.text.toPlainText().split("\n")]
    return set(pairwise(lines))


def _select(page: LibraryPage, name: str) -> None:
    for tab, view in enumerate((page.models_view, page.adapters_view)):
        names = _column(view, "Name")
        if name in names:
            page.tabs.setCurrentIndex(tab)
            view.selectRow(names.index(name))
            return
    raise AssertionError(f"{name} is not listed")




# ------------------------------------------------------------------ rows and values
def test_models_and_adapters_are_listed_with_their_values(page: LibraryPage) -> None:
    assert page.tabs.tabText(0) == "Models (5)"
    assert page.tabs.tabText(1) == "Adapters (2)"
    assert _column(page.models_view, "Name") == MODEL_NAMES  # sorted by name at first
    assert _column(page.adapters_view, "Name") == ADAPTER_NAMES
    assert page.scan_label.text() == "5 models, 2 adapters"

    moe = _row(page.models_view, "tiny-qwen3moe")
    assert moe["Architecture"] == "qwen3moe"
    assert moe["Params"] == "107.3K / 82.8K"  # total / active
    assert moe["Experts"] == "2 / 4"  # used / total
    assert (moe["Layers"], moe["Context"], moe["Quant"]) == ("2", "4,096", "F16")
    assert (moe["Source"], moe["Status"]) == ("Folder", "OK")

    split = _row(page.models_view, "tiny-llama")  # three files, one model
    assert (split["Layers"], split["Experts"], split["Params"]) == ("3", "—", "287.6K")
    assert split["Size"] == "570.3 KiB"

    hf = _row(page.models_view, "hf-model")
    assert (hf["Architecture"], hf["Quant"]) == ("qwen3", "BF16")

    peft = _row(page.adapters_view, "sql-lora")
    assert (peft["Format"], peft["Rank"], peft["Alpha"]) == ("PEFT", "8", "16")
    assert (peft["Targets"], peft["Base model"]) == ("q_proj, v_proj", "Qwen/Qwen3-Tiny")
    assert _row(page.adapters_view, "pirate-lora.gguf")["Format"] == "GGUF LoRA"


def test_a_bad_file_is_listed_with_its_reason_in_red(page: LibraryPage) -> None:
    bad = _row(page.models_view, "bad.gguf")
    assert bad["Status"].startswith("Error: truncated or corrupt")
    model = page.models_view.model()
    status = model.index(0, model.columnCount() - 1)
    assert status.data(Qt.ItemDataRole.ForegroundRole) == ERROR_COLOUR
    assert "truncated or corrupt" in status.data(Qt.ItemDataRole.ToolTipRole)
    _select(page, "bad.gguf")
    assert not page.details.fit_button.isEnabled()
    assert "truncated or corrupt" in page.details.text.toPlainText()


def test_an_incomplete_download_says_so(
    qtbot: QtBot, services: Services, feed: LibraryFeed, folder: Path
) -> None:
    write_gguf(folder / "partial.gguf", Shape(arch="llama"), header_only=True)
    page = _page(qtbot, services, feed)
    feed.start()
    qtbot.waitUntil(
        lambda: _column(page.models_view, "Name").count("tiny-llama") == 2, timeout=WAIT_MS
    )
    names = _column(page.models_view, "Name")
    statuses = _column(page.models_view, "Status")
    partial = [s for n, s in zip(names, statuses, strict=True) if n == "tiny-llama"]
    assert sorted(partial) == ["Incomplete", "OK"]
    model = page.models_view.model()
    row = names.index("tiny-llama") + partial.index("Incomplete")
    status = model.index(row, model.columnCount() - 1)
    assert status.data(Qt.ItemDataRole.ForegroundRole) == INCOMPLETE_COLOUR


def test_qt_model_tester_passes(page: LibraryPage, qtmodeltester: object) -> None:
    for model in (page.models, page.adapters, page.models_proxy, page.adapters_proxy):
        qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_model_tester_follows_live_inserts_and_removals(
    qtbot: QtBot, services: Services, feed: LibraryFeed, folder: Path, qtmodeltester: object
) -> None:
    """The tester watches every begin/end while the scan adds rows and a removal drops one."""
    table = LibraryTableModel(feed, "model")
    qtmodeltester.check(table, force_py=True)  # type: ignore[attr-defined]
    with qtbot.wait_signal(feed.scanning_changed, timeout=WAIT_MS):
        feed.start()
    qtbot.waitUntil(lambda: table.rowCount() == 5, timeout=WAIT_MS)
    (folder / "dense.gguf").unlink()
    qtbot.waitUntil(lambda: table.rowCount() == 4, timeout=WAIT_MS)


# ------------------------------------------------------------------ filter and sort
def test_the_filter_matches_name_architecture_and_source(page: LibraryPage, qtbot: QtBot) -> None:
    QTest.keyClicks(page.filter_edit, "moe")
    assert _column(page.models_view, "Name") == ["tiny-qwen3moe"]
    assert _column(page.adapters_view, "Name") == []

    page.filter_edit.setText("LLAMA")
    assert _column(page.models_view, "Name") == ["tiny-llama"]

    page.filter_edit.setText("folder qwen3")  # every word must match
    assert _column(page.models_view, "Name") == ["hf-model", "tiny-qwen3", "tiny-qwen3moe"]

    page.filter_edit.setText("ollama")
    assert _column(page.models_view, "Name") == []

    page.filter_edit.clear()
    assert _column(page.models_view, "Name") == MODEL_NAMES


@pytest.mark.parametrize(
    ("title", "ascending"),
    [
        ("Params", ["hf-model", "tiny-qwen3", "tiny-qwen3moe", "tiny-llama", "bad.gguf"]),
        ("Size", ["bad.gguf", "hf-model", "tiny-qwen3", "tiny-qwen3moe", "tiny-llama"]),
    ],
)
def test_columns_sort_by_value(page: LibraryPage, title: str, ascending: list[str]) -> None:
    """Sizes and counts sort as numbers (211 KiB < 570 KiB < 16 GiB), not as text."""
    view = page.models_view
    model = view.model()
    col = next(c for c in range(model.columnCount()) if model.headerData(c, _H) == title)
    view.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    assert _column(view, "Name") == ascending
    view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    known = [n for n in ascending if _row(view, n)[title] != "—"]
    unknown = [n for n in ascending if n not in known]
    assert _column(view, "Name") == list(reversed(known)) + unknown


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_unknown_values_sort_last_both_ways(page: LibraryPage, order: Qt.SortOrder) -> None:
    view = page.models_view
    model = view.model()
    col = next(c for c in range(model.columnCount()) if model.headerData(c, _H) == "Experts")
    view.sortByColumn(col, order)
    assert _column(view, "Experts") == ["2 / 4", "—", "—", "—", "—"]
    view.sortByColumn(_column_index(view, "Layers"), order)
    layers = [int(v) for v in _column(view, "Layers") if v != "—"]
    assert layers == sorted(layers, reverse=order == Qt.SortOrder.DescendingOrder)
    assert _column(view, "Layers")[-1] == "—"


def test_every_column_sorts(page: LibraryPage) -> None:
    """Clicking any header sorts without error and keeps every row."""
    for view in (page.models_view, page.adapters_view):
        model = view.model()
        for col in range(model.columnCount()):
            for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
                view.sortByColumn(col, order)
                assert model.rowCount() == (5 if view is page.models_view else 2)


# ------------------------------------------------------------------ details
def test_model_details_show_what_the_library_knows(page: LibraryPage) -> None:
    _select(page, "tiny-qwen3moe")
    details = _details(page)
    assert page.details.title_label.text() == "tiny-qwen3moe"
    for expected in (
        ("Experts", "4 (2 used per token)"),
        ("Parameters", "107.3K total, 82.8K active"),
        ("Heads", "4 (KV 2, head dim 16)"),
        ("RoPE scaling", "none"),
        ("Quantisation", "F16"),
        ("F32", "5 tensors, 1.2 KiB"),  # the per-tensor-type summary
        ("Chat template", "yes"),
        ("Thinking switch", "yes"),
        ("Trained context", "4096"),
    ):
        assert expected in details
    assert page.details.fit_button.isEnabled()
    assert page.details.start_button.isEnabled()

    _select(page, "hf-model")
    details = _details(page)
    assert ("RoPE scaling", "yarn x4.0, original context 4096") in details
    assert ("Kind", "model (safetensors)") in details


def test_adapter_details_show_compatibility_with_each_model(page: LibraryPage) -> None:
    _select(page, "sql-lora")
    details = _details(page)
    assert ("Rank", "8") in details
    assert ("Alpha", "16.0") in details
    assert ("Target modules", "q_proj, v_proj") in details
    assert ("Base model", "Qwen/Qwen3-Tiny") in details
    text = page.details.text.toPlainText()
    assert "tiny-qwen3: fits — all 4 adapted projections match the model's shapes" in text
    assert "hf-model: fits" in text
    assert "tiny-llama: does not fit — hidden size 64 ≠ 128" in text
    assert "bad.gguf: unknown — the model could not be read" in text
    assert not page.details.fit_button.isEnabled()  # Fit and Start are for models
    assert page.details.folder_button.isEnabled()


def test_adapter_compatibility_follows_a_new_model(
    page: LibraryPage, qtbot: QtBot, folder: Path
) -> None:
    _select(page, "pirate-lora.gguf")
    write_gguf(folder / "wide.gguf", Shape(arch="mistral", hidden=96))
    qtbot.waitUntil(
        lambda: "tiny-mistral: does not fit — adapter for qwen3, model is mistral"
        in page.details.text.toPlainText(),
        timeout=WAIT_MS,
    )


# ------------------------------------------------------------------ live updates
def test_a_file_written_on_disk_appears_and_a_deleted_one_goes(
    page: LibraryPage, qtbot: QtBot, folder: Path
) -> None:
    write_gguf(folder / "late" / "late.gguf", Shape(arch="phi3"))
    qtbot.waitUntil(lambda: "tiny-phi3" in _column(page.models_view, "Name"), timeout=WAIT_MS)
    assert page.tabs.tabText(0) == "Models (6)"

    shutil.rmtree(folder / "sql-lora")
    qtbot.waitUntil(lambda: _column(page.adapters_view, "Name") == ["pirate-lora.gguf"],
                    timeout=WAIT_MS)
    assert page.tabs.tabText(1) == "Adapters (1)"


def test_the_selected_entry_that_vanishes_leaves_the_details(
    page: LibraryPage, qtbot: QtBot, folder: Path
) -> None:
    """The details never describe a file that is gone; they follow the new selection."""
    _select(page, "tiny-qwen3")
    (folder / "dense.gguf").unlink()
    qtbot.waitUntil(lambda: page.details.title_label.text() != "tiny-qwen3", timeout=WAIT_MS)
    assert "tiny-qwen3" not in _column(page.models_view, "Name")
    assert page.details.entry == page.selected_entry()


def test_changing_the_model_folders_setting_rescans(
    page: LibraryPage, qtbot: QtBot, services: Services, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    write_gguf(other / "gemma.gguf", Shape(arch="gemma3"))

    services.settings.set("model_folders", [str(other)])

    qtbot.waitUntil(lambda: _column(page.models_view, "Name") == ["tiny-gemma3"],
                    timeout=WAIT_MS)
    assert _column(page.adapters_view, "Name") == []


# ------------------------------------------------------------------ scan state
def test_scanning_is_shown_then_the_counts(
    qtbot: QtBot, services: Services, feed: LibraryFeed
) -> None:
    page = _page(qtbot, services, feed)
    seen: list[tuple[bool, str, bool]] = []
    feed.scanning_changed.connect(  # after the page's own handler: sees what it shows
        lambda on: seen.append((on, page.scan_label.text(), page.busy_bar.isVisible()))
    )
    feed.start()
    qtbot.waitUntil(lambda: page.scan_label.text() == "5 models, 2 adapters", timeout=WAIT_MS)
    assert seen[0] == (True, "Scanning… 0 found", True)
    assert seen[-1][0] is False
    assert not page.busy_bar.isVisible()


def test_empty_state_with_no_folders_adds_the_folder_the_user_picks(
    qtbot: QtBot, services: Services, folder: Path, tmp_path: Path
) -> None:
    feed = _feed(services, [], tmp_path)
    page = LibraryPage(services, feed)
    qtbot.add_widget(page)
    page.show()
    try:
        with qtbot.wait_signal(feed.scanned, timeout=WAIT_MS):
            feed.start()
        qtbot.waitUntil(lambda: not feed.scanning, timeout=WAIT_MS)
        assert page.empty_state.isVisible()
        assert page.empty_state.title_label.text() == "No models yet"
        assert not page.content.isVisible()
        assert page.empty_state.action_button is not None
        assert page.empty_state.action_button.text() == "Add a model folder…"
        choose_folder_when_asked(qtbot, folder)  # the folder picker, answered as a user would
        page.empty_state.action_button.click()
        assert services.settings.get("model_folders") == [str(folder)]
        qtbot.waitUntil(lambda: _column(page.models_view, "Name") == MODEL_NAMES,
                        timeout=WAIT_MS)  # its models are listed: the empty state gave way
        assert not page.empty_state.isVisible()
    finally:
        feed.close()


def test_scan_problems_are_listed_on_request(
    qtbot: QtBot, services: Services, folder: Path, tmp_path: Path
) -> None:
    (folder / "split" / "loop").symlink_to(folder)
    feed = _feed(services, [folder, tmp_path / "gone"], tmp_path)
    page = _page(qtbot, services, feed)
    try:
        feed.start()
        qtbot.waitUntil(page.problems_button.isVisible, timeout=WAIT_MS)
        assert page.problems_button.text() == "2 scan problems"
        assert not page.problems_list.isVisible()  # unobtrusive until asked
        page.problems_button.click()
        problems = [page.problems_list.item(i).text() for i in range(page.problems_list.count())]
        assert any("symlink loop" in p for p in problems)
        assert any(str(tmp_path / "gone") in p and "does not exist" in p for p in problems)
        assert _column(page.models_view, "Name") == MODEL_NAMES  # the scan went on
    finally:
        feed.close()


# ------------------------------------------------------------------ actions
class _UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_show_in_folder_opens_the_folder(page: LibraryPage, folder: Path) -> None:
    catcher = _UrlCatcher()
    # PySide6 6.11 takes the slot's name as str at run time; its stub says bytes
    QDesktopServices.setUrlHandler("file", catcher, "open")  # type: ignore[arg-type]
    try:
        _select(page, "tiny-qwen3")
        page.details.folder_button.click()
        _select(page, "sql-lora")  # a folder entry opens that folder
        page.details.folder_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [Path(u.toLocalFile()) for u in catcher.urls] == [folder, folder / "sql-lora"]


@pytest.fixture
def window(qtbot: QtBot, services: Services, folder: Path) -> MainWindow:
    """The real window; its library (the services') looks at `folder`."""
    services.settings.set("model_folders", [str(folder)])
    window = MainWindow(services)
    qtbot.add_widget(window)
    window.show_page("library")
    window.show()
    page = window.pages["library"]
    assert isinstance(page, LibraryPage)
    qtbot.waitUntil(lambda: page.models.rowCount() == 5, timeout=WAIT_MS)
    return window


def test_fit_opens_the_fit_page_with_the_model(
    window: MainWindow, qtbot: QtBot, services: Services, folder: Path
) -> None:
    page = window.pages["library"]
    assert isinstance(page, LibraryPage)
    _select(page, "tiny-qwen3moe")
    page.details.fit_button.click()

    assert window.current_page == "fit"
    assert services.settings.get("fit_model_path") == str(folder / "moe.gguf")
    fit = window.pages["fit"]
    assert isinstance(fit, FitPage)
    qtbot.waitUntil(lambda: fit.model is not None, timeout=WAIT_MS)
    assert fit.model is not None
    assert fit.model.path == folder / "moe.gguf"


def test_start_opens_the_start_dialog_with_the_model(
    window: MainWindow, qtbot: QtBot, folder: Path
) -> None:
    page = window.pages["library"]
    assert isinstance(page, LibraryPage)
    _select(page, "hf-model")
    seen: list[tuple[str, str]] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, BackendStartDialog)
        seen.append((dialog.model_edit.text(), dialog.engine_combo.currentText()))
        dialog.reject()

    QTimer.singleShot(0, answer)
    page.details.start_button.click()

    assert window.current_page == "backends"
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)  # the dialog is window-modal
    assert seen == [(str(folder / "hf-model"), "vllm")]
