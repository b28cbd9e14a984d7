"""What a container gets of the host's files: exactly the model's files, links followed,
under the names the user gave them; a folder only on a remote host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.engines.mounts import MAX_FOLDER_FILES, ModelMounts
from app.engines.plan import PlanError
from app.engines.spec import NOBODY


def _pairs(mounts: ModelMounts) -> dict[str, str]:
    assert all(m.read_only for m in mounts.mounts)
    return {m.target: m.source for m in mounts.mounts}


def test_a_symlinked_model_mounts_its_target_under_the_links_name(tmp_path: Path) -> None:
    real = tmp_path / "store" / "qwen.gguf"
    real.parent.mkdir()
    real.write_bytes(b"GGUF")
    (tmp_path / "mine").mkdir()
    link = tmp_path / "mine" / "my-model.gguf"
    link.symlink_to(real)
    mounts = ModelMounts(in_container=True)
    assert mounts.file(str(link)) == "/models/m0/my-model.gguf"
    assert _pairs(mounts) == {"/models/m0/my-model.gguf": str(real)}


def test_a_hugging_face_cache_snapshot_mounts_the_blobs_its_relative_links_name(
        tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--org--model"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    (snapshot / "original").mkdir(parents=True)
    for name, blob in (("config.json", "b1"), ("model.safetensors", "b2"),
                       ("original/params.json", "b3")):
        (blobs / blob).write_text(name, encoding="utf-8")
        depth = "../" * (name.count("/") + 2)
        (snapshot / name).symlink_to(f"{depth}blobs/{blob}")
    mounts = ModelMounts(in_container=True)
    assert mounts.folder(str(snapshot)) == "/models/m0"
    assert _pairs(mounts) == {
        "/models/m0/config.json": str(blobs / "b1"),
        "/models/m0/model.safetensors": str(blobs / "b2"),
        "/models/m0/original/params.json": str(blobs / "b3")}


def test_a_split_gguf_brings_its_other_shards(tmp_path: Path) -> None:
    shards = [tmp_path / f"big-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    for shard in shards:
        shard.write_bytes(b"GGUF")
    (tmp_path / "unrelated.gguf").write_bytes(b"GGUF")
    mounts = ModelMounts(in_container=True)
    assert mounts.file(str(shards[0])) == "/models/m0/big-00001-of-00003.gguf"
    assert _pairs(mounts) == {f"/models/m0/{s.name}": str(s) for s in shards}


def test_a_system_file_is_mounted_alone_never_its_folder() -> None:
    mounts = ModelMounts(in_container=True)
    mounts.file("/etc/hostname")
    assert _pairs(mounts) == {"/models/m0/hostname": os.path.realpath("/etc/hostname")}


def test_a_remote_hosts_paths_are_mounted_by_folder_as_written() -> None:
    mounts = ModelMounts(in_container=True, local=False)
    assert mounts.file("/srv/models/q.gguf") == "/models/m0/q.gguf"
    assert mounts.file("/srv/models/lora.gguf") == "/models/m0/lora.gguf"
    assert _pairs(mounts) == {"/models/m0": "/srv/models"}


def test_a_folder_with_thousands_of_files_is_refused(tmp_path: Path) -> None:
    for i in range(MAX_FOLDER_FILES + 1):
        (tmp_path / f"f{i}").touch()
    with pytest.raises(PlanError, match="choose the model's own folder"):
        ModelMounts(in_container=True).folder(str(tmp_path))


def test_a_local_process_uses_the_paths_as_they_are(tmp_path: Path) -> None:
    mounts = ModelMounts(in_container=False)
    assert mounts.file(str(tmp_path / "q.gguf")) == str(tmp_path / "q.gguf")
    assert mounts.mounts == ()


def test_the_engine_runs_as_the_files_owner_never_root(tmp_path: Path) -> None:
    model = tmp_path / "q.gguf"
    model.write_bytes(b"GGUF")
    model.chmod(0o644)
    mounts = ModelMounts(in_container=True)
    mounts.file(str(model))
    if os.getuid() != 0:
        assert mounts.user() == f"{os.getuid()}:{os.getgid()}"
        return
    assert mounts.user() == NOBODY  # root's files: read as nobody
    model.chmod(0o600)
    with pytest.raises(PlanError, match=r"readable only by its owner.*chmod a\+r"):
        mounts.user()


def test_a_remote_hosts_engine_runs_as_nobody() -> None:
    mounts = ModelMounts(in_container=True, local=False)
    mounts.file("/srv/models/q.gguf")
    assert mounts.user() == NOBODY
