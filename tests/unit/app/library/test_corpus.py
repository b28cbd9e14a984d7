"""The corpus of nasty files (made by make_corpus.py, kept in git): each gets its reason."""

import json
import shutil
from pathlib import Path

import pytest

from app.library.library import Library
from app.library.loader import load_entry
from app.library.safetensors import SafetensorsError, read_safetensors_header
from tests.unit.app.library.builders import write_hf_model

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_every_corpus_file_has_an_expected_reason() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "expected.json"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".gguf")))
def test_gguf_corpus_entry_carries_the_reason(name: str) -> None:
    entry = load_entry(CORPUS / name)
    assert entry.error == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.endswith(".safetensors")))
def test_safetensors_corpus_reason(name: str, tmp_path: Path) -> None:
    with pytest.raises(SafetensorsError) as caught:
        read_safetensors_header(CORPUS / name)
    assert str(caught.value) == EXPECTED[name]

    # The same file as the weights of a model folder: the entry says the same.
    folder = write_hf_model(tmp_path / "model")
    shutil.copyfile(CORPUS / name, folder / "model.safetensors")
    assert load_entry(folder).error == EXPECTED[name]


def test_scanning_the_whole_corpus_lists_every_bad_file(tmp_path: Path) -> None:
    library = Library([CORPUS], include_defaults=False)
    report = library.rescan()
    library.close()

    ggufs = {n for n in EXPECTED if n.endswith(".gguf")}
    assert {e.path.name: e.error for e in report.entries} == {n: EXPECTED[n] for n in ggufs}
