"""A bench run as the table everyone shows (the CLI, the Bench page), as CSV and JSON
files, and two runs side by side.

The columns are declared once here, so the CLI's table, the page's table and the CSV
file say the same thing in the same order.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bench.results import BenchRun, Spread, VariantResult
from app.errors import UserError
from app.user_files import saving_failed, write_atomically

NONE = "-"
"""What a cell without a value shows."""


def _spread(value: Spread | None, digits: int = 1) -> str:
    if value is None:
        return NONE
    if value.count < 2:
        return f"{value.median:.{digits}f}"
    return f"{value.median:.{digits}f} ±{value.plus_minus:.{digits}f}"


def _mib(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _ppl(result: VariantResult) -> str:
    if result.perplexity is None:
        return NONE
    pm = f" ±{result.perplexity_pm:.2f}" if result.perplexity_pm is not None else ""
    return f"{result.perplexity:.2f}{pm}"


def _answers(result: VariantResult) -> str:
    if not result.answer_lengths:
        return NONE
    tokens = sum(result.answer_lengths) / len(result.answer_lengths)
    seconds = sum(result.answer_seconds) / max(1, len(result.answer_seconds))
    return f"{tokens:.0f} tok / {seconds:.1f} s"


def _buffers(result: VariantResult) -> str:
    devices = result.devices()
    return ", ".join(f"{name} {mib:,.0f}" for name, mib in sorted(devices.items())) or NONE


def _state(result: VariantResult) -> str:
    return result.state if not result.error else f"{result.state}: {result.error}"


@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[VariantResult], str]


COLUMNS: tuple[Column, ...] = (
    Column("variant", lambda r: r.label),
    Column("prompt tok/s", lambda r: _spread(r.prompt)),
    Column("decode tok/s", lambda r: _spread(r.decode)),
    Column("TTFT ms", lambda r: _spread(r.ttft, 0)),
    Column("perplexity", _ppl),
    Column("buffers MiB", _buffers),
    Column("estimate MiB", lambda r: _mib(r.estimate_mib)),
    Column("host RSS MiB", lambda r: _mib(r.host_rss_mib)),
    Column("answers", _answers),
    Column("state", _state),
)


def table(run: BenchRun) -> tuple[list[str], list[list[str]]]:
    """The run's headers and rows, one row per variant."""
    return [c.title for c in COLUMNS], [[c.text(v) for c in COLUMNS] for v in run.variants]


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain text columns, as `rigdeck ps` prints them."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


CSV_FIELDS = (
    "run", "variant", "state", "error", "prompt_tps", "prompt_tps_low", "prompt_tps_high",
    "decode_tps", "decode_tps_low", "decode_tps_high", "ttft_ms", "repetitions",
    "prompt_tokens", "answer_tokens", "perplexity", "perplexity_pm", "perplexity_chunks",
    "perplexity_context", "estimate_mib", "measured_mib", "gpu_process_mib", "host_rss_mib",
    "answer_tokens_mean", "answer_seconds_mean", "engine_version", "plan",
)


def _round(value: float | None, digits: int = 3) -> float | str:
    return "" if value is None else round(value, digits)


def csv_rows(run: BenchRun) -> list[dict[str, Any]]:
    """One flat row per variant; a column per buffer ("buffer:kv:CPU") after the fixed ones."""
    rows = []
    for v in run.variants:
        pp, tg, ttft = v.prompt, v.decode, v.ttft
        row: dict[str, Any] = {
            "run": run.id, "variant": v.label, "state": v.state, "error": v.error,
            "prompt_tps": _round(pp.median if pp else None),
            "prompt_tps_low": _round(pp.low if pp else None),
            "prompt_tps_high": _round(pp.high if pp else None),
            "decode_tps": _round(tg.median if tg else None),
            "decode_tps_low": _round(tg.low if tg else None),
            "decode_tps_high": _round(tg.high if tg else None),
            "ttft_ms": _round(ttft.median if ttft else None),
            "repetitions": len(v.decode_tps), "prompt_tokens": v.prompt_tokens or "",
            "answer_tokens": v.answer_tokens or "", "perplexity": _round(v.perplexity, 4),
            "perplexity_pm": _round(v.perplexity_pm, 5),
            "perplexity_chunks": v.perplexity_chunks or "",
            "perplexity_context": v.perplexity_context or "",
            "estimate_mib": _round(v.estimate_mib), "measured_mib": _round(v.measured_mib),
            "gpu_process_mib": _round(v.gpu_process_mib), "host_rss_mib": _round(v.host_rss_mib),
            "answer_tokens_mean": _round(sum(v.answer_lengths) / len(v.answer_lengths)
                                         if v.answer_lengths else None),
            "answer_seconds_mean": _round(sum(v.answer_seconds) / len(v.answer_seconds)
                                          if v.answer_seconds else None),
            "engine_version": v.engine_version, "plan": v.plan_json,
        }
        row.update({f"buffer:{name}": round(mib, 3) for name, mib in sorted(v.buffers.items())})
        rows.append(row)
    return rows


def to_csv(run: BenchRun) -> str:
    rows = csv_rows(run)
    extra = sorted({k for row in rows for k in row if k not in CSV_FIELDS})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*CSV_FIELDS, *extra], restval="",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_json(run: BenchRun) -> dict[str, Any]:
    """Everything the run holds: machine, engine version, base plan, settings, and each
    variant's samples and summaries."""
    variants = []
    for v in run.variants:
        item = v.to_dict()
        for name, value in (("prompt", v.prompt), ("decode", v.decode), ("ttft", v.ttft)):
            item[f"{name}_median"] = value.median if value else None
        item["devices_mib"] = v.devices()
        variants.append(item)
    return {"id": run.id, "created": run.created, "finished": run.finished,
            "state": run.state, "error": run.error, "model": run.model, "host": run.host,
            "machine": run.machine, "engine_version": run.engine_version,
            "base_plan": json.loads(run.base_plan_json or "{}"),
            "settings": run.settings.to_dict(), "variants": variants}


FORMATS = ("csv", "json")


def export(run: BenchRun, path: Path, fmt: str | None = None) -> str:
    """Write the run to `path` as CSV or JSON (by `fmt`, else by the file's suffix);
    the format written.

    Raises:
        UserError: an unknown format, or the file cannot be written (nothing half-written).
    """
    chosen = (fmt or path.suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise UserError(f"export {path}: choose csv or json (by --format or the file's suffix)")
    text = to_csv(run) if chosen == "csv" else json.dumps(to_json(run), indent=1) + "\n"
    try:
        write_atomically(path, text.encode("utf-8"), mode=0o644, create_folder=False)
    except OSError as exc:
        raise saving_failed("the bench run", path, exc) from exc
    return chosen


@dataclass(frozen=True)
class ComparedRow:
    """One variant label in two runs: its decode and prompt tok/s, perplexity and the
    biggest device's buffers in each (None where a run lacks it)."""

    label: str
    a: VariantResult | None
    b: VariantResult | None


def compare(a: BenchRun, b: BenchRun) -> list[ComparedRow]:
    """The variants of two runs matched by label, in the order of `a` then `b`'s new ones."""
    by_b = {v.label: v for v in b.variants}
    rows = [ComparedRow(v.label, v, by_b.pop(v.label, None)) for v in a.variants]
    rows += [ComparedRow(label, None, v) for label, v in by_b.items()]
    return rows


def _median(value: Spread | None) -> float | None:
    return value.median if value else None


def _num(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def _change(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0:
        return NONE
    return f"{(b - a) / a * 100:+.1f}%"


def compare_table(a: BenchRun, b: BenchRun) -> tuple[list[str], list[list[str]]]:
    """Two runs side by side: decode tok/s, prompt tok/s and perplexity in each, and how
    much B differs from A."""
    headers = ["variant", f"decode #{a.id}", f"decode #{b.id}", "Δ decode",
               f"prompt #{a.id}", f"prompt #{b.id}", f"ppl #{a.id}", f"ppl #{b.id}"]
    rows = []
    for row in compare(a, b):
        da = _median(row.a.decode) if row.a else None
        db = _median(row.b.decode) if row.b else None
        rows.append([
            row.label, _num(da), _num(db), _change(da, db),
            _num(_median(row.a.prompt) if row.a else None),
            _num(_median(row.b.prompt) if row.b else None),
            _num(row.a.perplexity if row.a else None, 2),
            _num(row.b.perplexity if row.b else None, 2)])
    return headers, rows
