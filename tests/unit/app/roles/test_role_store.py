"""Roles as files: the shipped defaults, the user's own, import and export, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.roles.role import Role, RoleAdapter, RoleError, role_from_toml
from app.roles.store import RoleStore


def test_shipped_defaults_load_and_show_the_format(tmp_path: Path) -> None:
    roles = RoleStore(tmp_path / "roles").all()
    assert list(roles)[:4] == ["Plain", "Sports coach", "Physics tutor", "Coder"]
    coach = roles["Sports coach"]
    assert coach.builtin
    assert coach.system_prompt.startswith("You are an encouraging")
    assert coach.sampling == {"temperature": 0.8, "top_p": 0.9}
    assert coach.thinking is False
    assert roles["Plain"].adapters == ()


def test_a_role_survives_a_round_trip_through_toml() -> None:
    role = Role(name="Tutor", icon="⚛", colour="#7c3aed", system_prompt="Check units.",
                adapters=(RoleAdapter("/m/tutor.gguf", 0.75), RoleAdapter("/m/style", 1.0)),
                sampling={"temperature": 0.3, "top_k": 1}, thinking=True,
                base_models=("/m/base.gguf",))
    assert role_from_toml(role.to_toml()) == role


def test_users_role_overrides_a_default_and_delete_restores_it(tmp_path: Path) -> None:
    store = RoleStore(tmp_path / "roles")
    edited = Role(name="Coder", system_prompt="Only Rust.")
    store.save(edited)
    assert store.get("Coder").system_prompt == "Only Rust."
    assert store.get("Coder").builtin  # an edited default stays a default
    store.delete("Coder")
    assert store.get("Coder").system_prompt.startswith("You are a senior")
    with pytest.raises(RoleError, match="not one of your roles"):
        store.delete("Coder")


def test_renaming_replaces_the_old_file(tmp_path: Path) -> None:
    store = RoleStore(tmp_path / "roles")
    store.save(Role(name="Old"))
    store.save(Role(name="New"), replaces="Old")
    names = set(store.all())
    assert "New" in names
    assert "Old" not in names


def test_export_then_import_elsewhere(tmp_path: Path) -> None:
    first = RoleStore(tmp_path / "a")
    first.save(Role(name="Chef", system_prompt="Cook.", adapters=(RoleAdapter("/x.gguf"),)))
    exported = first.export_file("Chef", tmp_path / "chef.toml")
    second = RoleStore(tmp_path / "b")
    imported = second.import_file(exported)
    assert imported.name == "Chef"
    assert second.get("Chef").adapters == (RoleAdapter("/x.gguf"),)
    with pytest.raises(RoleError, match="already exists"):
        second.import_file(exported)
    assert second.import_file(exported, overwrite=True).name == "Chef"


@pytest.mark.parametrize(("text", "message"), [
    ("name = ", "not valid TOML"),
    ("icon = 'x'", "cannot be read"),
    ("name = 'A'\ncolor = '#000000'", "unknown key"),
    ("name = 'A'\ncolour = 'red'", "colour must look like"),
    ("name = 'A'\nthinking = 'yes'", "thinking must be true or false"),
    ("name = 'A'\n[sampling]\nwarmth = 1", "unknown sampling key"),
    ("name = 'A'\n[[adapters]]\nscale = 1.0", "cannot be read"),
    ("name = 'A'\n[[adapters]]\npath = '/a'\nscale = 'big'", "scale must be a number"),
    ("name = 'A'\nsystem_prompt = ['x']", "system_prompt must be text, not a list"),
    ("name = 'A'\ndescription = 3", "description must be text, not a number"),
    ("name = 'A'\nicon = {}", "icon must be text, not a table"),
    ("name = 'A'\ncolour = 5", "colour must look like"),
    ("name = 'A'\nsampling = 0.5", "sampling must be a table"),
    ("name = 'A'\nadapters = '/a.gguf'", "adapters must be a list of tables"),
    ("name = 'A'\nadapters = ['/a.gguf']", "an adapter must be a table"),
])
def test_bad_role_text_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(RoleError, match=message):
        role_from_toml(text, source="r.toml")


def test_a_corrupt_user_file_is_reported_and_the_rest_still_loads(tmp_path: Path) -> None:
    folder = tmp_path / "roles"
    folder.mkdir()
    (folder / "broken.toml").write_text("name = [", encoding="utf-8")
    store = RoleStore(folder)
    assert "Plain" in store.all()
    assert len(store.problems) == 1
    assert "broken.toml" in store.problems[0]


def test_importing_a_missing_or_non_role_file_fails_clearly(tmp_path: Path) -> None:
    store = RoleStore(tmp_path / "roles")
    with pytest.raises(RoleError, match="cannot read role file"):
        store.import_file(tmp_path / "nope.toml")
    binary = tmp_path / "model.gguf"
    binary.write_bytes(b"GGUF\x03\x00\xff\xfe")
    with pytest.raises(RoleError):
        store.import_file(binary)


def test_a_name_that_makes_another_roles_file_name_is_refused(tmp_path: Path) -> None:
    store = RoleStore(tmp_path / "roles")
    store.save(Role(name="My Role", system_prompt="Mine."))
    incoming = tmp_path / "incoming.toml"
    incoming.write_text('name = "my role!"\nsystem_prompt = "Theirs."\n', encoding="utf-8")
    for overwrite in (False, True):  # --replace replaces a role of the same name only
        with pytest.raises(RoleError, match=r"my-role\.toml, the file of your role 'My Role'"
                           r".*nothing was overwritten"):
            store.import_file(incoming, overwrite=overwrite)
    with pytest.raises(RoleError, match="nothing was overwritten"):
        store.save(Role(name="MY ROLE"))
    assert store.get("My Role").system_prompt == "Mine."
    assert "my role!" not in store.all()
    store.save(Role(name="my role!"), replaces="My Role")  # a rename to it is fine
    assert "My Role" not in store.all()
    assert [p.name for p in (tmp_path / "roles").glob("*.toml")] == ["my-role.toml"]


def test_an_unreadable_file_is_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "roles"
    folder.mkdir()
    (folder / "chef.toml").write_bytes(b'name = "Chef\xff"\n')
    store = RoleStore(folder)
    with pytest.raises(RoleError, match=r"chef\.toml, which is there but cannot be read"):
        store.save(Role(name="Chef"))
    assert (folder / "chef.toml").read_bytes() == b'name = "Chef\xff"\n'


def test_a_role_is_saved_to_the_file_that_holds_it(tmp_path: Path) -> None:
    folder = tmp_path / "roles"
    folder.mkdir()
    (folder / "mine.toml").write_text('name = "Chef"\n', encoding="utf-8")
    store = RoleStore(folder)
    store.save(Role(name="Chef", system_prompt="Cook."))
    assert sorted(p.name for p in folder.glob("*.toml")) == ["mine.toml"]
    assert store.get("Chef").system_prompt == "Cook."
    store.delete("Chef")
    assert list(folder.glob("*.toml")) == []
