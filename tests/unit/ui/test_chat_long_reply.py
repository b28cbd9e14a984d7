"""Opening a stored conversation that holds a 10 MB and a 100 MB reply: the window
answers while it is read, each reply shows its start and end as plain text with a
"Show all" control, and Show all brings the whole text, a part at a time."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.chat.history import HistoryStore
from app.paths import AppPaths
from ui.chat_long_text import HEAD_CHARS, TAIL_CHARS
from ui.chat_markdown import TextView
from ui.pages.chat_page import ChatPage
from ui.services import Services

LINE = "The quick brown fox jumps over the lazy dog, again and again and again.\n"


def reply_of(size: int, label: str) -> str:
    return f"{label} starts here.\n" + LINE * (size // len(LINE)) + f"{label} ends here."


def seed(paths: AppPaths) -> tuple[str, str]:
    ten, hundred = reply_of(10_000_000, "Ten"), reply_of(100_000_000, "Hundred")
    store = HistoryStore.in_data_folder(paths.data)
    chat = store.create_conversation("Huge replies")
    store.add_message(chat.id, "user", "Write 10 MB")
    store.add_message(chat.id, "assistant", ten)
    store.add_message(chat.id, "user", "Now 100 MB")
    store.add_message(chat.id, "assistant", hundred)
    store.close()
    return ten, hundred


def test_a_conversation_with_huge_replies_opens_in_part_and_shows_all_on_demand(
        qtbot: QtBot, services: Services) -> None:
    ten, hundred = seed(services.paths)
    page = ChatPage(services)
    qtbot.add_widget(page)
    page.resize(1200, 800)
    page.show()
    # the page is up before the conversation is read: the read runs on the task runner
    assert page.message_list.messages == []
    qtbot.waitUntil(lambda: len(page.message_list.widgets) == 4, timeout=60_000)

    first, second = page.message_list.widgets[1], page.message_list.widgets[3]
    for widget, text, label, size in ((first, ten, "Ten", "10.0 MB"),
                                      (second, hundred, "Hundred", "100.0 MB")):
        long_text = widget.answer.long_text
        assert long_text is not None
        assert long_text.isVisible()
        assert long_text.head_view.text().startswith(f"{label} starts here.\nThe quick")
        assert long_text.tail_view.text().endswith(f"{label} ends here.")
        assert long_text.show_all_button.text() == f"Show all ({size})"
        assert not long_text.full_view.isVisible()
        # no Markdown was laid out for it
        assert not [v for v in widget.answer.findChildren(TextView)
                    if v._markdown and v.isVisible()]
        # only its start and end were read from the database
        assert widget.message.content == text[:HEAD_CHARS] + text[-TAIL_CHARS:]
        assert widget.message.content_chars == len(text)

    long_text = first.answer.long_text
    assert long_text is not None
    with qtbot.wait_signal(long_text.completed, timeout=120_000):
        long_text.show_all_button.click()  # the whole text is read, then shown in parts
        assert long_text.show_all_button.text() == "Reading 10.0 MB…"
    assert long_text.complete
    assert long_text.full_view.toPlainText() == ten
    assert not long_text.show_all_button.isVisible()


def test_a_long_conversation_builds_its_newest_messages_first(
        qtbot: QtBot, services: Services) -> None:
    store = HistoryStore.in_data_folder(services.paths.data)
    chat = store.create_conversation("Many turns")
    for index in range(60):
        store.add_message(chat.id, "user" if index % 2 == 0 else "assistant",
                          f"message {index}")
    store.close()
    page = ChatPage(services)
    qtbot.add_widget(page)
    page.show()
    messages = page.message_list
    qtbot.waitUntil(lambda: bool(messages.widgets) and not messages.building, timeout=30_000)
    assert [w.message.content for w in messages.widgets] == [
        f"message {index}" for index in range(20, 60)]
    assert messages.earlier_button.isVisible()
    assert messages.earlier_button.text() == "Show 20 earlier messages"
    messages.earlier_button.click()
    qtbot.waitUntil(lambda: not messages.building, timeout=30_000)
    assert len(messages.widgets) == 60
    assert messages.widgets[0].message.content == "message 0"
    assert not messages.earlier_button.isVisible()
