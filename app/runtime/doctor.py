"""The host doctor: for each host, what a backend needs there and, when missing, how to
fix it — engine reachable (and its version), NVIDIA driver and container runtime (GPU
requests work), free disk for images and models, the engine images, ports.

Shown on the Backends page and by `rigdeck doctor`. Every check is a real question to
the host (a probe container for GPUs); nothing is assumed from the configuration.
All calls block: the UI runs them on its task runner.
"""

from __future__ import annotations

import logging
import shutil
import socket
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from app.errors import UserError
from app.runtime.docker_runtime import DockerRuntime, HostUnreachableError
from app.runtime.host_gpus import PROBE_ARGS, HostGpu, local_gpus, parse_nvidia_smi
from app.runtime.hosts import LOCAL, NO_BRIDGE, Host, host_network_fix
from app.runtime.process_runtime import ProcessRuntime
from app.settings import setting_place, settings_control

log = logging.getLogger(__name__)

GIB = 1024**3
DISK_WARN_GIB = 20.0
"""Below this a vLLM image (about 10 GiB) or one large model no longer fits."""
DISK_FAIL_GIB = 2.0
NVIDIA_FIX = ("install the NVIDIA driver and nvidia-container-toolkit on the host, run "
              "`sudo nvidia-ctk runtime configure --runtime=docker` and restart Docker")


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    """Not checked here (the text says why); never a failure by itself."""


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, what was found and, unless ok, how to fix it."""

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": str(self.status), "detail": self.detail,
                "fix": self.fix}


@dataclass(frozen=True)
class HostReport:
    """All checks of one host, and the GPUs found there (with free memory)."""

    host: str
    url: str
    checks: tuple[Check, ...]
    gpus: tuple[HostGpu, ...] = field(default=())

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is CheckStatus.FAIL)

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "url": self.url, "ok": not self.failed,
                "checks": [c.as_dict() for c in self.checks],
                "gpus": [g.as_dict() for g in self.gpus]}


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def _disk_check(name: str, folders: list[Path], what: str) -> Check:
    """Free space on the file systems holding `folders` (the fullest one counts)."""
    existing = [f for f in folders if f.exists()]
    if not existing:
        return Check(name, CheckStatus.SKIP, f"no {what} folder here to measure")
    worst = min(existing, key=lambda f: shutil.disk_usage(f).free)
    free = shutil.disk_usage(worst).free
    detail = f"{_gib(free)} free for {what} at {worst}"
    if free < DISK_FAIL_GIB * GIB:
        return Check(name, CheckStatus.FAIL, detail,
                     f"free space on {worst}: {what} need several GiB")
    if free < DISK_WARN_GIB * GIB:
        return Check(name, CheckStatus.WARN, detail,
                     f"free space on {worst} (under {DISK_WARN_GIB:.0f} GiB left)")
    return Check(name, CheckStatus.OK, detail)


class _DockerDoctor:
    """The checks of one Docker engine, in the order a user fixes them."""

    def __init__(self, host: Host, runtime: DockerRuntime, images: dict[str, str],
                 model_folders: list[str]) -> None:
        self.host = host
        self.runtime = runtime
        self.images = images
        self.model_folders = model_folders
        self.gpus: tuple[HostGpu, ...] = ()

    def report(self) -> HostReport:
        try:
            version = self.runtime.version()
            info = self.runtime.info()
        except HostUnreachableError as exc:
            skipped = [Check(n, CheckStatus.SKIP, "the engine does not answer")
                       for n in ("NVIDIA GPUs", "Engine images", "Free disk", "Ports")]
            engine = Check("Docker engine", CheckStatus.FAIL, str(exc),
                           unreachable_fix(self.host))
            return HostReport(self.host.name, self.host.url, (engine, *skipped))
        engine = Check("Docker engine", CheckStatus.OK,
                       f"Docker {version.get('Version', '?')} (API "
                       f"{version.get('ApiVersion', '?')}) on {info.get('OperatingSystem', '?')}")
        present = {engine_name: image for engine_name, image in self.images.items()
                   if self.runtime.has_image(image)}
        checks = [engine, self._gpus(present), self._images(present), *self._disk(info),
                  self._ports()]
        return HostReport(self.host.name, self.host.url, tuple(checks), self.gpus)

    def _gpus(self, present: dict[str, str]) -> Check:
        name = "NVIDIA GPUs"
        nvml_gpus: list[HostGpu] = []
        no_driver: str | None = None
        if not self.host.is_remote:
            nvml_gpus, no_driver = local_gpus()
            self.gpus = tuple(nvml_gpus)
        if not present:
            return Check(name, CheckStatus.SKIP,
                         "no engine image on this host to probe GPU requests with",
                         "pull an engine image first (see Engine images)")
        image = next(iter(present.values()))
        try:
            code, output = self.runtime.run_probe(image, ["nvidia-smi"], list(PROBE_ARGS),
                                                  all_gpus=True)
        except HostUnreachableError:
            raise  # the engine went away: diagnose_host says so, not a GPU problem
        except UserError as exc:
            if not self.host.is_remote and no_driver is not None:
                log.info("GPU probe on %s: %s", self.host.name, exc)
                return Check(name, CheckStatus.WARN,
                             f"none here ({no_driver}), and the engine cannot hand GPUs to "
                             "containers: backends run on CPU only", "for GPUs " + NVIDIA_FIX)
            return Check(name, CheckStatus.FAIL, f"GPU requests fail: {exc}", NVIDIA_FIX)
        probed = parse_nvidia_smi(output)
        if code != 0 or not probed:
            return Check(name, CheckStatus.FAIL,
                         f"a container was given the GPUs but nvidia-smi found none "
                         f"(exit {code}): {output.strip()[-300:]}", NVIDIA_FIX)
        if not self.gpus:
            self.gpus = tuple(probed)
        listed = ", ".join(
            f"{g.index}: {g.name}"
            + ("" if g.free_mib is None else f" ({_gib(g.free_mib * 2**20)} free)")
            for g in self.gpus)
        return Check(name, CheckStatus.OK, f"GPU requests work; {listed}")

    def _images(self, present: dict[str, str]) -> Check:
        missing = {e: i for e, i in self.images.items() if e not in present}
        have = ", ".join(present.values()) or "none"
        pulls = "; ".join(f"docker pull {i}" for i in missing.values())
        if not present:
            return Check("Engine images", CheckStatus.FAIL, "no engine image is on this host",
                         f"{pulls} (or choose other images in {setting_place('llamacpp_image')}"
                         f" and {setting_place('vllm_image')})")
        if missing:
            return Check("Engine images", CheckStatus.WARN,
                         f"present: {have}; missing: {', '.join(missing.values())} "
                         f"(needed only for {', '.join(missing)} backends)", pulls)
        return Check("Engine images", CheckStatus.OK, f"present: {have}")

    def _disk(self, info: dict[str, object]) -> list[Check]:
        if self.host.is_remote:
            return [Check("Free disk", CheckStatus.SKIP,
                          "not measured on a remote host (Docker does not report free space)")]
        root = Path(str(info.get("DockerRootDir") or ""))
        images = _disk_check("Free disk for images", [root] if root.parts else [], "images")
        models = _disk_check("Free disk for models",
                             [Path(f).expanduser() for f in self.model_folders], "models")
        return [images, models]

    def _ports(self) -> Check:
        name = "Ports"
        if self.host.host_network:
            return Check(name, CheckStatus.OK,
                         f"host networking: backends listen on {self.host.bind_address} directly")
        if not self.runtime.has_network("bridge"):
            return Check(name, CheckStatus.FAIL, NO_BRIDGE, host_network_fix(self.host.name))
        if not self.host.is_remote:
            return _bindable(name, self.host.bind_address)
        return Check(name, CheckStatus.OK,
                     f"ports are published on {self.host.bind_address} of {self.host.name}")


def unreachable_fix(host: Host) -> str:
    """What to do about an engine that does not answer: start it, or point Rigdeck at it."""
    if host.name == LOCAL:
        return ("start Docker here (sudo systemctl start docker), or point DOCKER_HOST at "
                "a running engine before starting Rigdeck")
    return (f"start Docker on {host.name}, or fix its URL: "
            f"{settings_control('Hosts', 'Add host…')} with the name {host.name}, or "
            f"`rigdeck hosts add {host.name} URL`")


def _bindable(name: str, address: str) -> Check:
    """Whether a port can be published on `address` of this machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            return Check(name, CheckStatus.FAIL,
                         f"no port can be opened on {address}: {exc.strerror or exc}",
                         "choose a bind address this machine has (127.0.0.1 by default)")
        port = probe.getsockname()[1]
    return Check(name, CheckStatus.OK, f"backends listen on {address} (a free port now: {port})")


def _process_report(host: Host, runtime: ProcessRuntime) -> HostReport:
    try:
        binary = runtime.executable()
    except UserError as exc:
        check = Check("llama-server", CheckStatus.WARN, str(exc),
                      "install llama.cpp and put llama-server on PATH, or choose it in "
                      f"{setting_place('llama_server_path')}")
        return HostReport(host.name, host.url, (check,))
    return HostReport(host.name, host.url, (
        Check("llama-server", CheckStatus.OK, f"found at {binary}"),
        _bindable("Ports", host.bind_address)))


def diagnose_host(host: Host, runtime: DockerRuntime | ProcessRuntime, images: dict[str, str],
                  model_folders: list[str]) -> HostReport:
    """Every check of one host.

    Never raises for what the host lacks: that is what the report says.
    """
    if isinstance(runtime, ProcessRuntime):
        return _process_report(host, runtime)
    try:
        return _DockerDoctor(host, runtime, images, model_folders).report()
    except HostUnreachableError as exc:  # the engine went away between two checks
        return HostReport(host.name, host.url, (
            Check("Docker engine", CheckStatus.FAIL, str(exc), unreachable_fix(host)),))


def diagnose(hosts: dict[str, Host], runtimes: dict[str, DockerRuntime | ProcessRuntime],
             images: dict[str, str], model_folders: list[str], *,
             only: str | None = None) -> list[HostReport]:
    """Reports for every host (or `only` that one), local first.

    Raises:
        UserError: `only` names no known host.
    """
    if only is not None and only not in hosts:
        raise UserError(f"unknown host {only!r}; hosts: {', '.join(hosts)}")
    names = sorted(hosts, key=lambda n: (n != LOCAL, n))
    reports = []
    for name in names:
        if only is not None and name != only:
            continue
        report = diagnose_host(hosts[name], runtimes[name], images, model_folders)
        log.info("doctor %s: %s", name, ", ".join(f"{c.name} {c.status}" for c in report.checks))
        reports.append(report)
    return reports
