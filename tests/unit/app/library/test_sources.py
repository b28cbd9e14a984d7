"""Where models are found: user folders, the HF hub cache, an Ollama store, LM Studio."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.library.hf_cache import hf_cache_dir
from app.library.library import Library
from app.library.sources import discover, walk_folder
from tests.unit.app.library.builders import (
    HfModel,
    Shape,
    add_to_hf_cache,
    add_to_ollama,
    write_gguf,
    write_gguf_lora,
    write_hf_model,
    write_peft,
)


def _names(library: Library) -> dict[str, tuple[str, str, str | None]]:
    return {e.name: (e.source, e.kind, e.error) for e in library.entries}


def _scan(
    home: Path, folders: list[Path] | None = None, env: dict[str, str] | None = None
) -> Library:
    library = Library(folders or [], include_defaults=True, env=env or {}, home=home)
    library.rescan()
    library.close()
    return library


def test_user_folder_is_walked_recursively(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_gguf(root / "a" / "b" / "deep.gguf")
    write_hf_model(root / "hf" / "Qwen3-Tiny")
    write_peft(root / "loras" / "role")
    write_gguf(root / "split" / "big.gguf", split_max_tensors=8)
    (root / "downloading.gguf.part").write_bytes(b"GGUF")
    (root / "README.md").write_text("not a model")

    found = walk_folder(root)

    assert sorted(c.path.relative_to(root).as_posix() for c in found.candidates) == [
        "a/b/deep.gguf",
        "hf/Qwen3-Tiny",
        "loras/role",
        "split/big-00001-of-00003.gguf",
    ]
    assert {c.source for c in found.candidates} == {"folder"}
    assert found.problems == []


def test_symlink_loop_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_gguf(root / "sub" / "m.gguf")
    (root / "sub" / "loop").symlink_to(root)

    found = walk_folder(root)

    assert [c.path.name for c in found.candidates] == ["m.gguf"]
    assert len(found.problems) == 1
    assert "symlink loop" in found.problems[0]
    assert "loop" in found.problems[0]


def test_unreadable_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "models"
    write_gguf(root / "ok" / "m.gguf")
    (root / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path: Path) -> Iterator[os.DirEntry[str]]:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # tests run as root: chmod 000 would not stop it

    found = walk_folder(root)

    assert [c.path.name for c in found.candidates] == ["m.gguf"]
    assert found.problems == [f"cannot read folder {root / 'locked'}: Permission denied"]


def test_missing_user_folder_is_a_problem(tmp_path: Path) -> None:
    found = discover([tmp_path / "nope"], include_defaults=False)
    assert found.problems == [f"model folder {tmp_path / 'nope'} does not exist"]


def test_broken_link_is_an_entry_with_its_reason(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (root / "gone.gguf").symlink_to(tmp_path / "deleted.gguf")

    library = Library([root], include_defaults=False)
    library.rescan()
    library.close()

    [entry] = library.entries
    assert entry.error == f"broken symbolic link (points to {tmp_path / 'deleted.gguf'})"


def test_hf_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert hf_cache_dir({}, home) == home / ".cache" / "huggingface" / "hub"
    assert hf_cache_dir({"HF_HOME": "/x"}, home) == Path("/x/hub")
    assert hf_cache_dir({"HF_HOME": "/x", "HF_HUB_CACHE": "/y"}, home) == Path("/y")
    assert hf_cache_dir({"XDG_CACHE_HOME": "/c"}, home) == Path("/c/huggingface/hub")


@pytest.mark.parametrize("variable", ["default", "HF_HOME", "HF_HUB_CACHE"])
def test_hf_cache_models_and_adapters(tmp_path: Path, variable: str) -> None:
    home = tmp_path / "home"
    env: dict[str, str] = {}
    hub = home / ".cache" / "huggingface" / "hub"
    if variable == "HF_HOME":
        env["HF_HOME"] = str(tmp_path / "hf")
        hub = tmp_path / "hf" / "hub"
    elif variable == "HF_HUB_CACHE":
        env["HF_HUB_CACHE"] = str(tmp_path / "hubcache")
        hub = tmp_path / "hubcache"
    add_to_hf_cache(hub, "Qwen/Qwen3-Tiny", write_hf_model(tmp_path / "src" / "model"))
    add_to_hf_cache(hub, "me/role-lora", write_peft(tmp_path / "src" / "lora"))
    ggufs = tmp_path / "src" / "ggufs"
    write_gguf(ggufs / "tiny-Q8_0.gguf")
    add_to_hf_cache(hub, "unsloth/Tiny-GGUF", ggufs)

    library = _scan(home, env=env)

    assert _names(library) == {
        "Qwen/Qwen3-Tiny": ("hf-cache", "model", None),
        "me/role-lora": ("hf-cache", "adapter", None),
        "unsloth/Tiny-GGUF/tiny-Q8_0.gguf": ("hf-cache", "model", None),
    }
    model = next(e for e in library.entries if e.name == "Qwen/Qwen3-Tiny")
    assert model.hidden_size == 64
    assert model.complete


def test_hf_cache_download_in_progress_is_incomplete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    hub = home / ".cache" / "huggingface" / "hub"
    source = write_hf_model(tmp_path / "src", HfModel(shards=2))
    snapshot = add_to_hf_cache(hub, "Qwen/Qwen3-Tiny", source)
    (snapshot / "model-00002-of-00002.safetensors").unlink()  # its blob is still .incomplete

    [entry] = _scan(home).entries

    assert entry.error is None
    assert not entry.complete


def test_ollama_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = home / ".ollama" / "models"
    model = write_gguf(tmp_path / "src" / "m.gguf")
    lora = write_gguf_lora(tmp_path / "src" / "l.gguf")
    add_to_ollama(store, "qwen3", "tiny", model)
    add_to_ollama(store, "qwen3", "latest", model)
    add_to_ollama(
        store,
        "helper",
        "v1",
        write_gguf(tmp_path / "src" / "other.gguf", Shape(layers=3)),
        adapter=lora,
    )

    library = _scan(home)

    assert _names(library) == {
        "qwen3:latest, qwen3:tiny": ("ollama", "model", None),
        "helper:v1": ("ollama", "model", None),
        "helper:v1 (adapter)": ("ollama", "adapter", None),
    }


def test_ollama_store_from_env_with_a_missing_blob_and_a_bad_manifest(tmp_path: Path) -> None:
    store = tmp_path / "ollama"
    blob = add_to_ollama(store, "qwen3", "tiny", write_gguf(tmp_path / "src" / "m.gguf"))
    blob.unlink()
    bad = store / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")

    library = Library([], env={"OLLAMA_MODELS": str(store)}, home=tmp_path / "home")
    report = library.rescan()
    library.close()

    [entry] = library.entries
    assert entry.name == "qwen3:tiny"
    assert entry.error == f"blob {blob.name} is missing (an unfinished `ollama pull`?)"
    assert len(report.problems) == 1
    assert report.problems[0].startswith("Ollama manifest broken:latest: unreadable")


def test_ollama_names_from_other_registries(tmp_path: Path) -> None:
    store = tmp_path / "ollama"
    add_to_ollama(store, "x", "q4", write_gguf(tmp_path / "src" / "m.gguf"))
    src = store / "manifests" / "registry.ollama.ai" / "library" / "x" / "q4"
    dest = store / "manifests" / "hf.co" / "unsloth" / "Qwen3-GGUF" / "Q4_K_M"
    dest.parent.mkdir(parents=True)
    src.rename(dest)

    library = _scan(tmp_path / "home", env={"OLLAMA_MODELS": str(store)})

    assert [e.name for e in library.entries] == ["hf.co/unsloth/Qwen3-GGUF:Q4_K_M"]


@pytest.mark.parametrize("location", [".lmstudio/models", ".cache/lm-studio/models"])
def test_lmstudio_folder(tmp_path: Path, location: str) -> None:
    home = tmp_path / "home"
    write_gguf(home / location / "lmstudio-community" / "Qwen3-Tiny-GGUF" / "Qwen3-Tiny-Q8_0.gguf")

    library = _scan(home)

    assert _names(library) == {
        "lmstudio-community/Qwen3-Tiny-GGUF/Qwen3-Tiny-Q8_0.gguf": ("lmstudio", "model", None)
    }


def test_a_store_inside_a_user_folder_keeps_its_own_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_gguf(home / ".lmstudio" / "models" / "pub" / "m" / "m.gguf")

    library = _scan(home, folders=[home / ".lmstudio"])

    assert [(e.source, e.name) for e in library.entries] == [("lmstudio", "pub/m/m.gguf")]


def test_defaults_can_be_left_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_gguf(home / ".lmstudio" / "models" / "pub" / "m" / "m.gguf")

    library = Library([], include_defaults=False, env={}, home=home)
    library.rescan()
    library.close()

    assert library.entries == []
