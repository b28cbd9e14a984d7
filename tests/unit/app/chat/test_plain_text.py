"""Server text shown in a terminal: escape sequences and controls out, the words kept,
however the text was cut into pieces."""

from app.chat.plain_text import HELD_CHARS, ControlStripper, plain_text, shorten

HOSTILE = ("a\x1b[2Jb\x1b[1;31mc\x1b[0m d\x1b]0;title\x07e\x1b]52;c;eA==\x1b\\f"
           "\x1bPq#0\x1b\\g\x1b(Bh\x1bci\x07j\rk\x9b31ml\x00m\x7fn\tline\nnext")
PLAIN = "abc defghijk31mlmn\tline\nnext"


def test_sequences_and_controls_are_dropped_tab_and_newline_kept() -> None:
    assert plain_text(HOSTILE) == PLAIN


def test_plain_text_is_left_alone() -> None:
    text = "Ünïcode, emoji \U0001f375, <tags> and [brackets] stay.\n\tIndented."
    assert plain_text(text) == text


def test_a_sequence_cut_anywhere_never_reaches_the_screen() -> None:
    for cut in range(len(HOSTILE) + 1):
        stripper = ControlStripper()
        shown = stripper.feed(HOSTILE[:cut]) + stripper.feed(HOSTILE[cut:]) + stripper.finish()
        assert shown == PLAIN, cut


def test_one_character_at_a_time() -> None:
    stripper = ControlStripper()
    assert "".join(stripper.feed(c) for c in HOSTILE) + stripper.finish() == PLAIN


def test_an_unfinished_sequence_is_not_held_for_ever() -> None:
    stripper = ControlStripper()
    assert stripper.feed("start \x1b]0;") == "start "
    shown = "".join(stripper.feed("x" * 100) for _ in range(HELD_CHARS // 50))
    assert "\x1b" not in shown
    assert shown.endswith("x" * 100)
    assert stripper.finish() == ""


def test_shorten_says_where_it_cut() -> None:
    assert shorten("\x1b[31m" + "y" * 600, 500) == "y" * 500 + "… (shortened)"
    assert shorten("  short \x07 ") == "short"
