"""LaunchPlan: everything needed to start one backend, independent of where it runs.

A plan is what the user (or Fit, or Library) chose; an engine recipe turns it into a
command line. Plans are read from TOML files and CLI flags, so every value is checked
here, once, before anything starts: an unknown key or a value that contradicts another
is refused with the reason, never silently dropped.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from app.errors import UserError

ENGINES = ("llamacpp", "vllm")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class PlanError(UserError):
    """A plan that cannot be started as written; the message says which value and why."""


@dataclass(frozen=True)
class LaunchPlan:
    """One backend to start. `None` means "the engine's own default".

    `model` is a path on the host that runs the backend (a GGUF file for llama.cpp, a
    model folder or GGUF file for vLLM). `gpus` are device indexes ("0") or UUIDs
    ("GPU-…"); empty means CPU only. `port` None lets Rigdeck pick a free one.
    """

    model: str
    engine: str = "llamacpp"
    name: str = ""
    image: str = ""
    adapters: tuple[str, ...] = ()
    max_lora_rank: int | None = None
    """vLLM's --max-lora-rank: the largest adapter rank it will serve."""
    context: int | None = None
    parallel: int | None = None
    batch: int | None = None
    ubatch: int | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    flash_attn: bool | None = None
    gpus: tuple[str, ...] = ()
    gpu_layers: int | None = None
    tensor_split: tuple[float, ...] = ()
    n_cpu_moe: int | None = None
    cpu_offload_gb: float | None = None
    experts: int | None = None
    reasoning_format: str | None = None
    threads: int | None = None
    port: int | None = None
    extra_args: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def backend_name(self) -> str:
        """The name the backend goes by: `name`, else one made from the model's file name."""
        if self.name:
            return self.name
        stem = Path(self.model.rstrip("/")).name
        stem = stem.removesuffix(".gguf").lower()
        cleaned = re.sub(r"[^a-z0-9_.-]+", "-", stem).strip("-._") or "model"
        return cleaned[:63]

    def to_dict(self) -> dict[str, Any]:
        """Only the values that differ from the defaults (short labels, short TOML)."""
        out: dict[str, Any] = {}
        defaults = {f.name: f.default for f in fields(self)}
        for key, value in asdict(self).items():
            if key == "model" or (value not in ((), {}, None) and value != defaults.get(key)):
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LaunchPlan:
        """A checked plan from plain values (TOML, JSON, labels).

        Raises:
            PlanError: an unknown key, a value of the wrong type, or values in conflict.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise PlanError(
                f"unknown plan setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if "model" not in raw:
            raise PlanError("the plan names no model (set `model = \"/path/to/model.gguf\"`)")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            values[key] = _coerce(key, value, known[key].type)
        plan = cls(**values)
        check_plan(plan)
        return plan

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"the stored plan is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise PlanError("the stored plan is not a table of settings")
        return cls.from_dict(raw)

    @classmethod
    def from_toml(cls, path: Path) -> LaunchPlan:
        """Read a plan file (top-level keys, or a `[plan]` table).

        Raises:
            PlanError: the file is missing, not TOML, or holds a bad plan.
        """
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PlanError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PlanError(f"plan file {path} is not valid TOML: {exc}") from exc
        except UnicodeDecodeError:
            raise PlanError(f"{path} is not a plan file (a plan is TOML text); for a model "
                            "file or folder, use --model PATH") from None
        table = raw.get("plan", raw)
        if not isinstance(table, dict):
            raise PlanError(f"plan file {path}: [plan] must be a table")
        return cls.from_dict(dict(table))


_INT_FIELDS = {"context", "parallel", "batch", "ubatch", "gpu_layers", "n_cpu_moe", "experts",
               "threads", "port", "max_lora_rank"}


def _coerce(key: str, value: Any, declared: object) -> Any:  # noqa: PLR0911, PLR0912 (one case per type)
    """value as the field's type, or PlanError saying what was expected."""
    text = str(declared)
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanError(f"plan setting {key} must be a whole number, not {value!r}")
        return value
    if key == "cpu_offload_gb":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PlanError(f"plan setting {key} must be a number, not {value!r}")
        return float(value)
    if key == "flash_attn":
        if not isinstance(value, bool):
            raise PlanError(f"plan setting flash_attn must be true or false, not {value!r}")
        return value
    if key == "labels":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise PlanError("plan setting labels must be a table of text values")
        return dict(value)
    if text.startswith("tuple"):
        items = [value] if isinstance(value, str | int | float) else value
        if not isinstance(items, list | tuple):
            raise PlanError(f"plan setting {key} must be a list, not {value!r}")
        if key == "tensor_split":
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                raise PlanError(f"plan setting tensor_split must be numbers, not {value!r}")
            return tuple(float(v) for v in items)
        return tuple(str(v) for v in items)
    if not isinstance(value, str):
        raise PlanError(f"plan setting {key} must be text, not {value!r}")
    return value


def check_plan(plan: LaunchPlan) -> None:  # noqa: PLR0912 (one rule per line, in one place)
    """Refuse values that cannot work together, before anything starts.

    Raises:
        PlanError: the first problem found, saying which values and why.
    """
    if plan.engine not in ENGINES:
        raise PlanError(f"unknown engine {plan.engine!r}; use one of {', '.join(ENGINES)}")
    if not plan.model.strip():
        raise PlanError("the plan names no model")
    if plan.name and not NAME_RE.match(plan.name):
        raise PlanError(
            f"backend name {plan.name!r} must be lower-case letters, digits, '-', '_' or '.'"
        )
    for key in ("context", "parallel", "batch", "ubatch", "experts", "threads", "max_lora_rank"):
        value = getattr(plan, key)
        if value is not None and value < 1:
            raise PlanError(f"plan setting {key} must be at least 1, not {value}")
    for key in ("gpu_layers", "n_cpu_moe"):
        value = getattr(plan, key)
        if value is not None and value < 0:
            raise PlanError(f"plan setting {key} cannot be negative ({value})")
    if plan.port is not None and not 1024 <= plan.port <= 65535:
        raise PlanError(f"port {plan.port} is outside 1024-65535")
    if plan.batch and plan.ubatch and plan.ubatch > plan.batch:
        raise PlanError(f"ubatch ({plan.ubatch}) cannot exceed batch ({plan.batch})")
    for key in ("cache_type_k", "cache_type_v"):
        value = getattr(plan, key)
        if value is not None and value not in KV_TYPES:
            raise PlanError(f"{key} {value!r} is not a KV cache type ({', '.join(KV_TYPES)})")
    if len(set(plan.gpus)) != len(plan.gpus):
        raise PlanError(f"a GPU is listed twice in gpus {list(plan.gpus)}")
    for gpu in plan.gpus:
        if not (gpu.isdigit() or gpu.startswith(("GPU-", "MIG-"))):
            raise PlanError(f"GPU {gpu!r} is neither an index (0, 1, …) nor a UUID (GPU-…)")
    if plan.tensor_split:
        if len(plan.tensor_split) != len(plan.gpus):
            raise PlanError(
                f"tensor_split has {len(plan.tensor_split)} parts but {len(plan.gpus)} GPUs "
                "are chosen; give one part per GPU"
            )
        if any(v < 0 for v in plan.tensor_split) or sum(plan.tensor_split) <= 0:
            raise PlanError("tensor_split parts must be positive")
    if not plan.gpus and plan.gpu_layers:
        raise PlanError(f"gpu_layers {plan.gpu_layers} needs at least one GPU in gpus")
    if plan.engine == "vllm":
        _check_vllm(plan)
    else:
        _check_llamacpp(plan)


def _check_llamacpp(plan: LaunchPlan) -> None:
    if plan.cpu_offload_gb is not None:
        raise PlanError("cpu_offload_gb is a vLLM setting; for llama.cpp use n_cpu_moe")
    if plan.flash_attn is False and plan.cache_type_v not in (None, "f16", "bf16", "f32"):
        raise PlanError(
            f"a quantised V cache ({plan.cache_type_v}) needs flash attention; "
            "turn flash_attn on or use cache_type_v = \"f16\""
        )


def _check_vllm(plan: LaunchPlan) -> None:
    llama_only = {
        "n_cpu_moe": plan.n_cpu_moe, "gpu_layers": plan.gpu_layers, "batch": plan.batch,
        "ubatch": plan.ubatch, "threads": plan.threads,
        "tensor_split": plan.tensor_split or None, "flash_attn": plan.flash_attn,
    }
    given = [k for k, v in llama_only.items() if v is not None]
    if given:
        raise PlanError(f"vLLM has no equivalent of {', '.join(given)} (llama.cpp settings)")
    if plan.cache_type_k != plan.cache_type_v:
        raise PlanError("vLLM uses one KV cache type: cache_type_k and cache_type_v must match")
    if plan.cache_type_k not in (None, "f16", "bf16", "q8_0"):
        raise PlanError(f"vLLM cannot use a {plan.cache_type_k} KV cache (use f16 or q8_0/fp8)")
    if not plan.gpus:
        raise PlanError("vLLM needs at least one GPU; choose gpus or use llama.cpp")
    if plan.cpu_offload_gb is not None and not (0 <= plan.cpu_offload_gb < float("inf")):
        raise PlanError(f"plan setting cpu_offload_gb must be 0 or more, not "
                        f"{plan.cpu_offload_gb}")
