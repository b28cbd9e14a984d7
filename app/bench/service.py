"""Bench: one model, a base plan and a matrix of variations, each variant started (or
relaunched) through the BackendsService and measured — speed from the server's own
timings, memory from the engine's buffer lines and the host, perplexity from llama.cpp's
own `llama-perplexity` in the same image — and kept.

The CLI and the Bench page call the same methods; `run` blocks (the page runs it on its
task runner) and says how it goes through psygnal events, emitted on the thread that
runs it. `cancel` may be called from any thread: the variant in progress stops (its
stream is cut, its backend or perplexity run stopped) and nothing is left running.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from psygnal import Signal

from app.bench.export import compare_table, export
from app.bench.machine import machine_info
from app.bench.matrix import Variant, check_variants, expand, parse_matrix
from app.bench.results import BenchRun, BenchSettings, VariantResult
from app.bench.store import BenchStore, RunSummary
from app.chat.client import ChatClient, ChatRequest, ChatStream, Timeouts
from app.engines.llamacpp_log import parse_perplexity
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.paths import AppPaths
from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.calibrate import LOG_LINES, engine_version, measure, start_key
from app.runtime.hosts import LOCAL
from app.settings import SettingsStore
from resources import resource_path

log = logging.getLogger(__name__)

DEFAULT_TEXT = resource_path("bench", "pride-and-prejudice-ch1-2.txt")
THINK_PROMPTS = (
    "What is 17 times 23? Answer with the number.",
    "Name three prime numbers between 50 and 70.",
    "In one sentence: why is the sky blue?",
)
"""The fixed prompt set of a think / no-think variant: its answers' length and time."""
PERPLEXITY_TRIES = 3
"""Runs of llama-perplexity for one estimate when its output is cut at exit (its log is
written by a thread it does not wait for: llama.cpp issue 22142; see PERPLEXITY_ENV)."""
BENCH_LABEL = "rigdeck.bench"
"""On a bench's backends and perplexity containers: the run they belong to."""


@dataclass(frozen=True)
class BenchRequest:
    """What to bench: a base plan (its model), the variants, where, and how."""

    base: LaunchPlan
    variants: tuple[Variant, ...]
    host: str = LOCAL
    settings: BenchSettings = field(default_factory=BenchSettings)


class CancelledError(Exception):
    """The user cancelled the run (internal: the run ends "cancelled", never raises it)."""


class Bench:
    """Bench runs: plan a matrix, run it, keep it, export and compare."""

    started = Signal(object)
    """A BenchRun that begins (stored, its variants waiting)."""
    progress = Signal(int, str, float)
    """(variant index, what it does now, fraction of that variant done)."""
    variant_finished = Signal(object)
    """A VariantResult done, failed, skipped or cancelled."""
    finished = Signal(object)
    """The BenchRun at its end (done, failed or cancelled), stored."""

    def __init__(self, backends: BackendsService, store: BenchStore) -> None:
        self.backends = backends
        self.store = store
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._stream: ChatStream | None = None
        self._running = False

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ planning
    @staticmethod
    def plan(varies: list[str]) -> list[Variant]:
        """The variants of `--vary` texts (KEY=V1,V2,…), the first key varying slowest.

        Raises:
            UserError: a variation cannot be read (the message says which and why).
        """
        return expand(parse_matrix(varies))

    @property
    def running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ running
    def cancel(self) -> None:
        """Stop the run in progress (from any thread); `run` returns it "cancelled"."""
        self._cancel.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.cancel()

    def run(self, request: BenchRequest) -> BenchRun:
        """Run every variant in turn and keep the run; returns it done, failed or
        cancelled (a variant that fails is recorded with its reason, the others run).

        Raises:
            UserError: a run is already in progress, the text is missing, or the run
                cannot be stored; nothing was started then.
        """
        with self._lock:
            if self._running:
                raise UserError("a bench run is in progress: wait for it or cancel it")
            self._running = True
            self._cancel.clear()
        try:
            return self._run(request)
        finally:
            with self._lock:
                self._running = False
                self._stream = None

    def _run(self, request: BenchRequest) -> BenchRun:
        settings = request.settings
        if not settings.text:
            settings = replace(settings, text=str(DEFAULT_TEXT))
        text = Path(settings.text)
        if settings.perplexity and not text.is_file():
            raise UserError(f"the perplexity text {text} does not exist")
        variants = list(request.variants) or [Variant(())]
        problems = check_variants(variants, request.base)
        results = [VariantResult(i, v.label, dict(v.settings),
                                 state="skipped" if i in problems else "waiting",
                                 error=problems.get(i, "")) for i, v in enumerate(variants)]
        run = BenchRun(id=0, created=time.time(), model=request.base.model, host=request.host,
                       base_plan_json=request.base.to_json(), settings=settings,
                       variants=results,
                       machine=machine_info(self.backends.hosts[request.host]))
        self.store.create(run)
        self.started.emit(run)
        runner = _VariantRunner(self, run, request, text)
        try:
            runner.run_all(variants)
            run.state = "cancelled" if self._cancel.is_set() else (
                "done" if any(v.state == "done" for v in results) else "failed")
        except Exception as exc:  # the run is kept with what it measured
            run.state, run.error = "failed", str(exc)
            log.exception("bench run #%d failed", run.id)
        finally:
            runner.stop_backend()
        for result in results:
            if result.state in ("waiting", "running"):
                result.state = "cancelled"
                self.store.save_variant(run.id, result)
                self.variant_finished.emit(result)
        run.engine_version = next((v.engine_version for v in results if v.engine_version), "")
        self.store.finish(run)
        self.finished.emit(run)
        return run

    def _set_stream(self, stream: ChatStream | None) -> None:
        with self._lock:
            self._stream = stream
        if stream is not None and self._cancel.is_set():
            stream.cancel()

    # ------------------------------------------------------------------ kept runs
    def runs(self) -> list[RunSummary]:
        return self.store.runs()

    def load(self, run_id: int) -> BenchRun:
        """Raises: UserError: no such run."""
        return self.store.get(run_id)

    def delete(self, run_id: int) -> None:
        self.store.delete(run_id)

    def export(self, run_id: int, path: Path, fmt: str | None = None) -> str:
        """Write run `run_id` as CSV or JSON; the format written.

        Raises:
            UserError: no such run, an unknown format, or the file cannot be written.
        """
        return export(self.store.get(run_id), path, fmt)

    def compare(self, a: int, b: int) -> tuple[list[str], list[list[str]]]:
        """Runs `a` and `b` side by side (headers, rows).

        Raises:
            UserError: either run does not exist.
        """
        return compare_table(self.store.get(a), self.store.get(b))


class _VariantRunner:
    """One run's variants, one after the other, on one backend started and relaunched
    through the BackendsService."""

    def __init__(self, bench: Bench, run: BenchRun, request: BenchRequest, text: Path) -> None:
        self.bench = bench
        self.backends = bench.backends
        self.run = run
        self.request = request
        self.settings = run.settings
        self.text = text
        self.cancel = bench._cancel
        self.backend: Backend | None = None
        self.backend_plan: LaunchPlan | None = None
        self.perplexities: dict[str, tuple[float | None, float | None, int | None,
                                           int | None, str]] = {}
        self.labels = {**request.base.labels, BENCH_LABEL: str(run.id)}

    def _check(self) -> None:
        if self.cancel.is_set():
            raise CancelledError

    def _say(self, result: VariantResult, phase: str, fraction: float) -> None:
        self.bench.progress.emit(result.index, phase, fraction)

    def run_all(self, variants: list[Variant]) -> None:
        for variant, result in zip(variants, self.run.variants, strict=True):
            if result.state == "skipped":
                self.bench.store.save_variant(self.run.id, result)
                self.bench.variant_finished.emit(result)
                continue
            if self.cancel.is_set():
                return
            result.state = "running"
            self._say(result, "starting", 0.0)
            try:
                self._variant(variant, result)
                result.state = "done"
            except CancelledError:
                result.state = "cancelled"
            except UserError as exc:
                result.state, result.error = "failed", str(exc)
                log.info("bench variant %s failed: %s", result.label, exc)
                self._drop_dead_backend()
            self.bench.store.save_variant(self.run.id, result)
            self._say(result, result.state, 1.0)
            self.bench.variant_finished.emit(result)
            if result.state == "cancelled":
                return

    # ------------------------------------------------------------------ one variant
    def _variant(self, variant: Variant, result: VariantResult) -> None:
        plan = replace(variant.plan(self.request.base), name=f"bench-{self.run.id}",
                       labels=self.labels)
        result.plan_json = plan.to_json()
        backend = self._backend_for(plan, result)
        self._check()
        log_text = self.backends.log_tail(backend, LOG_LINES)
        result.engine_version = engine_version(log_text)
        with ChatClient(backend.base_url, self.backends.api_key(backend),
                        Timeouts(read=self.settings.ready_timeout_s)) as client:
            self._speed(client, variant, result)
            self._memory(backend, result)
            if variant.think is not None:
                self._answers(client, variant, result)
        self._record_speed(backend, result)
        if self.settings.perplexity:
            self._perplexity(plan, result)

    def _backend_for(self, plan: LaunchPlan, result: VariantResult) -> Backend:
        """The backend running `plan`: the one already up if its plan is the same (a
        think / no-think variant needs no relaunch), relaunched with `plan`, or started."""
        backend = self.backend
        if backend is not None and backend.state is BackendState.READY \
                and self.backend_plan == plan:
            return backend
        if backend is not None and backend.state.is_live:
            self._say(result, "relaunching", 0.05)
            self.backend = None
            started = self.backends.relaunch(backend, plan)
        else:
            self._say(result, "starting", 0.05)
            started = self.backends.start(plan, self.request.host)
        self.backend, self.backend_plan = started.backend, plan
        self._say(result, "loading", 0.1)
        self.backends.wait_ready(started.backend, self.settings.ready_timeout_s,
                                 cancel=self.cancel)
        self._check()
        return started.backend

    def _drop_dead_backend(self) -> None:
        if self.backend is not None and self.backend.state is not BackendState.READY:
            self.stop_backend()

    def stop_backend(self) -> None:
        """Stop the run's backend (and forget it): after a variant that needs it down, a
        failure, a cancel, the run's end."""
        backend, self.backend, self.backend_plan = self.backend, None, None
        if backend is not None:
            try:
                self.backends.stop(backend)
            except Exception:  # e.g. removed meanwhile by someone else: nothing is left
                log.warning("could not stop the bench backend %s", backend.name, exc_info=True)

    def _prompt(self) -> str:
        """About `prompt_tokens` tokens of English: the text's words, repeated as needed
        (a word is about 1.3 tokens; the server's count is what is reported)."""
        words = DEFAULT_TEXT.read_text(encoding="utf-8").split()
        wanted = max(1, int(self.settings.prompt_tokens / 1.3))
        chosen = (words * (wanted // len(words) + 1))[:wanted]
        return "Continue this text:\n\n" + " ".join(chosen)

    def _request(self, variant: Variant, content: str, max_tokens: int, *,
                 fixed_length: bool) -> ChatRequest:
        extra: dict[str, object] = {"cache_prompt": False}
        if fixed_length:
            extra["ignore_eos"] = True  # every repetition decodes the same count
        kwargs = None if variant.think is None else {"enable_thinking": variant.think}
        return ChatRequest([{"role": "user", "content": content}], max_tokens=max_tokens,
                           sampling={"temperature": 0.0}, chat_template_kwargs=kwargs,
                           extra=extra)

    def _send(self, client: ChatClient, request: ChatRequest) -> tuple[ChatStream, float]:
        stream = client.stream(request)
        self.bench._set_stream(stream)
        began = time.perf_counter()
        try:
            reply = stream.run()
        finally:
            self.bench._set_stream(None)
        self._check()
        if reply.error:
            raise UserError(f"the server failed a bench request: {reply.error}")
        return stream, time.perf_counter() - began

    def _speed(self, client: ChatClient, variant: Variant, result: VariantResult) -> None:
        prompt = self._prompt()
        reps = self.settings.repetitions
        if self.settings.warmup:
            self._say(result, "warming up", 0.15)
            self._send(client, self._request(variant, "Hello", 4, fixed_length=True))
        for rep in range(reps):
            self._say(result, f"speed {rep + 1}/{reps}", 0.2 + 0.45 * rep / reps)
            stream, seconds = self._send(client, self._request(
                variant, prompt, self.settings.answer_tokens, fixed_length=True))
            reply, timings = stream.reply, stream.reply.timings
            if timings.get("predicted_per_second"):
                result.speed_source = "server"
                result.decode_tps.append(timings["predicted_per_second"])
                result.prompt_tps.append(timings.get("prompt_per_second", 0.0))
                result.ttft_ms.append(timings.get("prompt_ms", 0.0))
                result.prompt_tokens = int(timings.get("prompt_n", 0)) or None
                result.answer_tokens = int(timings.get("predicted_n", 0)) or None
            else:  # a server without timings: its usage over our clock
                result.speed_source = "client"
                if reply.tokens_per_s:
                    result.decode_tps.append(reply.tokens_per_s)
                if reply.ttft_s is not None:
                    result.ttft_ms.append(reply.ttft_s * 1000)
                result.prompt_tokens = reply.prompt_tokens
                result.answer_tokens = reply.completion_tokens
            log.debug("bench %s rep %d: %.2f s", result.label, rep + 1, seconds)

    def _memory(self, backend: Backend, result: VariantResult) -> None:
        self._say(result, "memory", 0.68)
        result.host_rss_mib = self.backends.host_memory_mib(backend)
        text = self.backends.log_tail(backend, LOG_LINES)
        found = measure(backend, self.backends.hosts[backend.host], text)
        if found is None:
            return
        for kind in ("model", "kv", "compute", "output"):
            for buft, mib in found.report.by_kind(kind).items():
                result.buffers[f"{kind}:{buft}"] = mib
        result.on_gpu = found.on_gpu
        result.estimate_mib = found.estimated_mib
        result.measured_mib = found.measured_mib
        if found.source == "nvml":
            result.gpu_process_mib = found.measured_mib

    def _answers(self, client: ChatClient, variant: Variant, result: VariantResult) -> None:
        for number, prompt in enumerate(THINK_PROMPTS):
            self._say(result, f"answers {number + 1}/{len(THINK_PROMPTS)}",
                      0.7 + 0.1 * number / len(THINK_PROMPTS))
            stream, seconds = self._send(client, self._request(
                variant, prompt, self.settings.think_max_tokens, fixed_length=False))
            timings = stream.reply.timings
            tokens = int(timings.get("predicted_n", 0)) or stream.reply.completion_tokens or 0
            result.answer_lengths.append(tokens)
            result.answer_seconds.append(seconds)

    def _record_speed(self, backend: Backend, result: VariantResult) -> None:
        """The speed beside the memory the calibration recorded when it became ready."""
        store = self.backends.calibration
        prompt, decode = result.prompt, result.decode
        if store is None or decode is None:
            return
        store.set_speed(start_key(backend), prompt.median if prompt else None, decode.median)

    def _perplexity(self, plan: LaunchPlan, result: VariantResult) -> None:
        key = replace(plan, name="", labels={}).to_json()
        if key not in self.perplexities:
            # The backend goes first: two copies of a large model may not fit.
            self._say(result, "perplexity", 0.82)
            self.stop_backend()
            self.perplexities[key] = self._measure_perplexity(plan, result)
        value, pm, chunks, context, problem = self.perplexities[key]
        result.perplexity, result.perplexity_pm = value, pm
        result.perplexity_chunks, result.perplexity_context = chunks, context
        if problem:
            result.error = problem

    def _measure_perplexity(self, plan: LaunchPlan, result: VariantResult
                            ) -> tuple[float | None, float | None, int | None, int | None, str]:
        for attempt in range(1, PERPLEXITY_TRIES + 1):
            code, output = self.backends.run_perplexity(
                plan, self.request.host, self.text, context=self.settings.perplexity_context,
                chunks=self.settings.perplexity_chunks,
                name=f"bench-{self.run.id}-ppl-{result.index}", cancel=self.cancel,
                timeout_s=self.settings.ready_timeout_s)
            self._check()
            report = parse_perplexity(output)
            if not (code == 0 and report.cut) or attempt == PERPLEXITY_TRIES:
                break
            log.warning("llama-perplexity for %s exited before its estimate was written "
                        "(llama.cpp issue 22142); running it again (%d/%d)", result.label,
                        attempt + 1, PERPLEXITY_TRIES)
        problem = report.problem
        if code not in (0, None) and report.perplexity is None:
            tail = " / ".join(output.strip().splitlines()[-3:])[:300]
            problem = f"llama-perplexity exited {code}: {report.problem or tail}"
        return (report.perplexity, report.plus_minus, report.chunks, report.context, problem)


def bench_defaults(settings: SettingsStore) -> BenchSettings:
    """How a run is measured unless the user says otherwise: the settings' perplexity text
    and repetitions (the Bench page's and `rigdeck bench`'s defaults)."""
    return BenchSettings(repetitions=int(settings.get("bench_repetitions")),
                         text=str(settings.get("bench_text")))


def build_bench(paths: AppPaths, backends: BackendsService) -> Bench:
    """The app's Bench over its BackendsService, its runs in the data folder."""
    return Bench(backends, BenchStore.in_data_folder(paths.data))

