"""The plan of every backend Rigdeck started, kept so it can be started again by name.

The Gateway starts a model or role whose backend is not running from this record (on
demand), and stops an idle one after the plan's TTL. The record is written by
`BackendsService.start`, the one place a backend is started, so a backend started from
the window, the CLI or the Gateway is remembered alike. One file, saved_plans.toml in the
config folder, a `[[plan]]` table each; entries that cannot be read are kept as they are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from app.engines.plan import LaunchPlan, PlanError
from app.errors import UserError
from app.user_files import UserFileError, folder_lock, read_toml, saving_failed, write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedPlan:
    """A backend's plan on a host; `ttl_s` 0: it is never stopped for being idle."""

    name: str
    host: str
    plan: LaunchPlan
    saved_at: float
    ttl_s: int = 0
    on_demand: bool = True
    """The Gateway may start it when a request asks for its model."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.name)


class SavedPlans:
    """saved_plans.toml; `problems` says which entries could not be read (by `all()`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def all(self) -> list[SavedPlan]:
        return self._read()[0]

    def get(self, name: str, host: str | None = None) -> SavedPlan:
        """The saved plan of backend `name` (on `host`, when given).

        Raises:
            UserError: none has that name, or several hosts do and `host` is not given.
        """
        found = [p for p in self.all() if p.name == name and host in (None, p.host)]
        if len(found) == 1:
            return found[0]
        if found:
            hosts = ", ".join(p.host for p in found)
            raise UserError(f"a plan named {name!r} is saved for several hosts ({hosts}); "
                            "say which with --host")
        known = ", ".join(sorted({p.name for p in self.all()})) or "none yet"
        raise UserError(f"no saved plan for a backend named {name!r} (saved: {known}); a plan "
                        "is saved when a backend starts")

    def remember(self, name: str, host: str, plan: LaunchPlan) -> None:
        """Record the plan a backend was just started with (its TTL and on-demand choice
        stay as they were).

        Raises:
            UserError: the file cannot be written (it is unchanged); the caller logs it.
        """
        with folder_lock(self.path.parent):
            plans, kept = self._read()
            old = next((p for p in plans if p.key == (host, name)), None)
            new = SavedPlan(name, host, plan, time.time(),
                            old.ttl_s if old else 0, old.on_demand if old else True)
            self._write([*(p for p in plans if p.key != new.key), new], kept)

    def set_ttl(self, name: str, ttl_s: int, host: str | None = None) -> SavedPlan:
        """Stop the backend after `ttl_s` seconds without a Gateway request (0: never).

        Raises:
            UserError: a negative TTL, no such plan, or the file cannot be written.
        """
        if ttl_s < 0:
            raise UserError(f"an idle time is 0 (never stop) or more seconds, not {ttl_s}")
        return self._change(name, host, ttl_s=ttl_s)

    def set_on_demand(self, name: str, on: bool, host: str | None = None) -> SavedPlan:
        """Raises UserError: no such plan, or the file cannot be written."""
        return self._change(name, host, on_demand=on)

    def forget(self, name: str, host: str | None = None) -> None:
        """Raises UserError: no such plan, or the file cannot be written."""
        gone = self.get(name, host)
        with folder_lock(self.path.parent):
            plans, kept = self._read()
            self._write([p for p in plans if p.key != gone.key], kept)

    def _change(self, name: str, host: str | None, **values: Any) -> SavedPlan:
        target = self.get(name, host)
        with folder_lock(self.path.parent):
            plans, kept = self._read()
            changed = replace(next(p for p in plans if p.key == target.key), **values)
            self._write([changed if p.key == target.key else p for p in plans], kept)
        return changed

    def _read(self) -> tuple[list[SavedPlan], list[Any]]:
        self.problems = []
        try:
            data = read_toml(self.path)
        except UserFileError as exc:
            self.problems.append(f"saved plans {exc}")
            return [], []
        entries = (data or {}).get("plan", [])
        if not isinstance(entries, list):
            self.problems.append(f"saved plans {self.path}: plan must be a list of tables")
            return [], []
        plans: list[SavedPlan] = []
        kept: list[Any] = []
        for number, entry in enumerate(entries, 1):
            try:
                plans.append(_saved(entry))
            except (KeyError, TypeError, ValueError, PlanError) as exc:
                self.problems.append(f"saved plans {self.path}: entry {number} cannot be read "
                                     f"({exc}); left in the file as it is")
                kept.append(entry)
        return plans, kept

    def _write(self, plans: list[SavedPlan], kept: list[Any]) -> None:
        if self.problems and not (plans or kept):
            raise UserError(f"{self.problems[0]}; fix or remove the file (it was left as it is)")
        data = {"plan": [*({"name": p.name, "host": p.host, "plan": p.plan.to_json(),
                            "saved_at": p.saved_at, "ttl_s": p.ttl_s, "on_demand": p.on_demand}
                           for p in plans), *kept]}
        try:
            write_atomically(self.path, tomli_w.dumps(data).encode("utf-8"))
        except OSError as exc:
            raise saving_failed("the saved plans", self.path, exc) from exc


def _saved(entry: Any) -> SavedPlan:
    if not isinstance(entry, dict):
        raise TypeError("not a table")
    name, host, plan = entry["name"], entry["host"], entry["plan"]
    ttl, on_demand = entry.get("ttl_s", 0), entry.get("on_demand", True)
    if not (isinstance(name, str) and name and isinstance(host, str) and host
            and isinstance(plan, str)):
        raise ValueError("a plan needs a name, a host and the plan")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise ValueError("ttl_s must be 0 or more seconds")
    if not isinstance(on_demand, bool):
        raise ValueError("on_demand must be true or false")
    return SavedPlan(name, host, LaunchPlan.from_json(plan), float(entry.get("saved_at", 0)),
                     ttl, on_demand)
