"""Backends as Docker containers on one engine (local socket, ssh:// or tcp:// with TLS).

Everything Rigdeck needs to find a backend again is in the container's labels; the
API key is in its environment (never its command line). The docker SDK does the
transport; ssh:// uses the system's `ssh` client, so ~/.ssh/config and agents apply.

The SDK (with paramiko and requests) is imported inside the methods, which run on worker
threads: at module level it was a quarter of the window's start-up time.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from app.engines.recipes import image_setting
from app.engines.spec import TMPFS_OPTIONS, LaunchSpec
from app.errors import UserError
from app.runtime.backend import LABEL
from app.runtime.failure import explain_start_error
from app.runtime.hosts import NO_BRIDGE, PLAIN_TCP_PORT, Host, check_url, host_network_fix
from app.runtime.observed import Foreign, Observed
from app.settings import setting_place, settings_control

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

MANAGED = f"{LABEL}.managed"
CONTAINER_PREFIX = "rigdeck-"
CLIENT_TIMEOUT_S = 30
PROBE_TIMEOUT_S = 60.0
API_VERSION = "1.41"
"""Docker 20.10's API; every engine since answers it."""


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a lost engine raises; ValueError: the ssh transport reading a closed pipe."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException, OSError,
            http.client.HTTPException, ValueError)


class HostUnreachableError(UserError):
    """The host's Docker engine does not answer."""


def short_reason(exc: BaseException) -> str:
    """Why a connection failed, in the system's words ("Connection refused"), not the
    transport's retry story ("HTTPSConnectionPool(host=…): Max retries exceeded…")."""
    chain: list[BaseException] = []
    waiting: list[BaseException] = [exc]
    while waiting:  # the causes, and the exceptions urllib3 keeps as `reason` or argument
        error = waiting.pop(0)
        if error in chain:
            continue
        chain.append(error)
        waiting += [e for e in (error.__cause__, error.__context__, getattr(error, "reason", None),
                                *error.args) if isinstance(e, BaseException)]
    for error in reversed(chain):  # the root cause first
        if isinstance(error, ssl.SSLError):
            return f"TLS failed: {getattr(error, 'verify_message', '') or error.reason or error}"
        if isinstance(error, OSError) and error.strerror:
            return str(error.strerror)
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1).strip() if found else text[:300]


def _tls_config(host: Host) -> Any:
    """The client side of a tcp:// engine's TLS: Docker's ca.pem, cert.pem and key.pem in
    the host's certificate folder (default: DOCKER_CERT_PATH, else ~/.docker).

    Raises:
        HostUnreachableError: a certificate is missing.
    """
    import docker.tls

    folder = Path(host.cert_path or os.environ.get("DOCKER_CERT_PATH")
                  or Path.home() / ".docker").expanduser()
    files = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise HostUnreachableError(
            f"cannot reach the Docker engine at {host.url} (host {host.name}): TLS needs "
            f"ca.pem, cert.pem and key.pem in {folder} ({', '.join(missing)} missing); give "
            "the folder with `rigdeck hosts add NAME URL --cert-path DIR` or in "
            f"{settings_control('Hosts', 'Add host…')}")
    return docker.tls.TLSConfig(client_cert=(str(files["cert"]), str(files["key"])),
                                ca_cert=str(files["ca"]), verify=True)


def _timestamp(text: str | None) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; None when unset."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text[:19] + "+00:00").timestamp()
    except ValueError:
        return None


def gpu_request(gpus: tuple[str, ...]) -> list[docker.types.DeviceRequest]:
    """The NVIDIA device request for exactly these GPUs (indexes or UUIDs)."""
    import docker.types

    if not gpus:
        return []
    return [docker.types.DeviceRequest(driver="nvidia", device_ids=list(gpus),
                                       capabilities=[["gpu"]])]


def hardening(spec: LaunchSpec) -> dict[str, Any]:
    """The container options that shut a backend in (see app/engines/spec.py)."""
    options: dict[str, Any] = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"],
                               "pids_limit": spec.pids_limit, "read_only": spec.read_only_root}
    if spec.user:
        options["user"] = spec.user
    if spec.tmpfs:
        options["tmpfs"] = dict.fromkeys(spec.tmpfs, TMPFS_OPTIONS)
    return options


class DockerRuntime:
    """One Docker engine; every call blocks (run it off the GUI thread)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._client: docker.DockerClient | None = None
        self._retired = False

    def client(self) -> docker.DockerClient:
        """A connected client, made on first use.

        Raises:
            HostUnreachableError: the engine does not answer; the message says how to fix.
        """
        import docker

        if self._retired:
            raise HostUnreachableError(f"host {self.host.name} was removed")
        if self._client is None:
            try:
                check_url(self.host.url, plain_tcp=not self.host.is_remote)
            except UserError as exc:
                raise HostUnreachableError(
                    f"cannot reach the Docker engine at {self.host.url} (host "
                    f"{self.host.name}): not an engine "
                    f"URL ({exc})" + (" — check DOCKER_HOST" if self.host.name == "local"
                                       else "")) from None
            socket_path = self.host.url.removeprefix("unix://")
            if self.host.url.startswith("unix://") and not Path(socket_path).exists():
                # docker-py leaks the socket of a failed unix connect: do not try one.
                raise HostUnreachableError(self._unreachable(
                    FileNotFoundError(f"no Docker socket at {socket_path}")))
            if self.host.url.startswith("ssh://"):
                from app.runtime import ssh_transport

                ssh_transport.install()
            try:
                # A fixed API version: "auto" asks the engine at construction and leaks
                # the socket when none answers.
                self._client = docker.DockerClient(
                    base_url=self.host.url, timeout=CLIENT_TIMEOUT_S, version=API_VERSION,
                    use_ssh_client=self.host.url.startswith("ssh://"),
                    tls=_tls_config(self.host) if self._uses_tls() else False)
            except transport_errors() as exc:
                raise HostUnreachableError(self._unreachable(exc)) from exc
            if self._uses_tls():
                # requests lets REQUESTS_CA_BUNDLE (set system-wide on many machines) win
                # over the session's own CA (psf/requests#3829): the engine's CA would be
                # ignored and its certificate refused.
                self._client.api.trust_env = False
        return self._client

    def _uses_tls(self) -> bool:
        url = urlparse(self.host.url)
        return url.scheme == "tcp" and url.port != PLAIN_TCP_PORT

    def _unreachable(self, exc: BaseException) -> str:
        """One line: where, why in a few words, and what to check."""
        reason = short_reason(exc)
        hint = ("is Docker running there (sudo systemctl start docker), and may you use it "
                "(the docker group)?")
        if self.host.url.startswith("ssh://"):
            from app.runtime.ssh_transport import ssh_error

            reason = ssh_error(self.host.url) or reason
            hint = ("check that `ssh` reaches it with a key or an agent (no password prompt) "
                    "and that the docker CLI is installed there")
        elif self.host.url.startswith("tcp://"):
            hint = "is the engine listening there with TLS, and are its certificates yours?"
        return f"cannot reach the Docker engine at {self.host.url} (host {self.host.name}): " \
               f"{reason}; {hint}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def retire(self) -> None:
        """Close for good: the host was removed, and a call still in flight on another
        thread must not connect again (an ssh:// connection would outlive it)."""
        self._retired = True
        self.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """fn(...) with transport failures turned into HostUnreachableError."""
        import docker.errors

        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError:
            raise
        except transport_errors() as exc:
            self.close()
            raise HostUnreachableError(self._unreachable(exc)) from exc

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("version", lambda: self.client().version())
        return result

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("info", lambda: self.client().info())
        return result

    def has_image(self, image: str) -> bool:
        import docker.errors

        try:
            self._call("image", self.client().images.get, image)
        except docker.errors.ImageNotFound:
            return False
        return True

    def image_tags(self) -> list[str]:
        """Every image name:tag the engine has, sorted (for the Settings page to offer)."""
        images = self._call("images", self.client().images.list)
        return sorted({tag for image in images for tag in image.tags})

    def has_network(self, name: str) -> bool:
        """Whether the engine has a network called `name` (no "bridge": dockerd --bridge=none)."""
        return bool(self._call("networks", self.client().networks.list, names=[name]))

    def run_probe(self, image: str, entrypoint: list[str], args: list[str], *,
                  all_gpus: bool = False, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int, str]:
        """Run a throw-away container of `image` to its end: (exit code, output).

        It gets no network and, with `all_gpus`, every GPU the way a backend asks for
        them; it is removed whatever happens.

        Raises:
            UserError: the engine refused to start it (e.g. no NVIDIA container runtime),
                explained; HostUnreachableError when the engine does not answer.
        """
        import docker.errors
        import docker.types

        client = self.client()
        requests = ([docker.types.DeviceRequest(driver="nvidia", count=-1,
                                                capabilities=[["gpu", "utility"]])]
                    if all_gpus else [])
        container = self._call("create", client.containers.create, image,
                               entrypoint=entrypoint, command=args, network_mode="none",
                               labels={f"{LABEL}.probe": "1"}, device_requests=requests)
        try:
            try:
                self._call("start", container.start)
            except docker.errors.APIError as exc:
                raise UserError(explain_start_error(str(exc.explanation or exc),
                                                    host=self.host.name)) from exc
            status = self._call("wait", container.wait, timeout=timeout_s)
            output = self._call("logs", container.logs)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        return int(status.get("StatusCode", -1)), bytes(output).decode(errors="replace")

    def tool_path(self, image: str, tool: str) -> str:
        """Where `tool` lies in `image`: beside the server its entrypoint runs
        (/usr/local/bin/llama-server → /usr/local/bin/llama-perplexity).

        Raises:
            UserError: the image is not there or has no entrypoint to go by.
        """
        import docker.errors

        try:
            attrs = self._call("image", self.client().api.inspect_image, image)
        except docker.errors.ImageNotFound:
            raise UserError(f"host {self.host.name}: the image {image} is not there") from None
        entrypoint = (attrs.get("Config") or {}).get("Entrypoint") or []
        if not entrypoint or "/" not in str(entrypoint[0]):
            raise UserError(f"the image {image} has no entrypoint path to find {tool} beside")
        return f"{str(entrypoint[0]).rsplit('/', 1)[0]}/{tool}"

    def run_once(self, spec: LaunchSpec, name: str, labels: dict[str, str], *,
                 cancel: threading.Event | None = None,
                 timeout_s: float = 3600.0) -> tuple[int | None, str]:
        """Run the engine's one-shot tool `spec.tool` in a container of `spec.image` to its
        end: (exit code, output); exit code None when `cancel` was set or the time ran out
        (the container is stopped then). It is shut in as a backend is (the same mounts,
        read-only, the same hardening) and gets no network at all; it is removed whatever
        happens.

        Raises:
            UserError: the image or the tool is missing, or the engine refused to start it;
                HostUnreachableError when the engine does not answer.
        """
        import docker.errors
        import docker.types

        client = self.client()
        entrypoint = [self.tool_path(spec.image, spec.tool)]
        kwargs: dict[str, Any] = {
            "entrypoint": entrypoint, "command": list(spec.args),
            "name": f"{CONTAINER_PREFIX}{name}", "labels": {**labels, f"{LABEL}.tool": spec.tool},
            "environment": dict(spec.env), "network_mode": "none",
            "mounts": [docker.types.Mount(m.target, m.source, type="bind",
                                          read_only=m.read_only) for m in spec.mounts],
            "device_requests": gpu_request(spec.gpus), **hardening(spec)}
        try:
            container = self._call("create", client.containers.create, spec.image, **kwargs)
        except docker.errors.APIError as exc:
            raise UserError(explain_start_error(str(exc.explanation or exc),
                                                host=self.host.name)) from exc
        try:
            try:
                self._call("start", container.start)
            except docker.errors.APIError as exc:
                said = str(exc.explanation or exc)
                if entrypoint[0] in said and "no such file" in said.lower():
                    raise UserError(
                        f"the image {spec.image} has no {spec.tool} beside its server "
                        f"({entrypoint[0]}): choose an image that ships llama.cpp's tools "
                        f"with the server in {setting_place(image_setting(spec.engine))}"
                    ) from exc
                raise UserError(explain_start_error(said, host=self.host.name)) from exc
            code = self._wait_exit(str(container.id), cancel, timeout_s)
            output = bytes(self._call("logs", client.api.logs, container.id)).decode(
                errors="replace")
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self._call("remove", client.api.remove_container, container.id, force=True)
        return code, output

    def _wait_exit(self, ref: str, cancel: threading.Event | None, timeout_s: float
                   ) -> int | None:
        """The exit code of container `ref` once it ends; None after stopping it because
        `cancel` was set or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            observed = self.inspect(ref)
            if observed.status in ("exited", "gone"):
                return observed.exit_code if observed.exit_code is not None else -1
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                self.stop(ref, 1, remove=False)
                return None
            if cancel is not None:
                cancel.wait(0.2)
            else:
                time.sleep(0.2)

    def memory_usage(self, ref: str) -> float | None:
        """The container's memory as `docker stats` says it (MiB; page cache of the
        mapped model file left out, as `docker stats` does), None where it is not told."""
        import docker.errors

        try:
            stats = self._call("stats", self.client().api.stats, ref, stream=False,
                               one_shot=True)
        except docker.errors.APIError:
            return None
        memory = stats.get("memory_stats") or {}
        usage = memory.get("usage")
        if not isinstance(usage, int):
            return self._process_rss(ref)  # an engine without cgroup memory accounting
        details = memory.get("stats") or {}
        cache = details.get("inactive_file", details.get("total_inactive_file", 0))
        return float(usage - (cache if isinstance(cache, int) else 0)) / (1 << 20)

    def _process_rss(self, ref: str) -> float | None:
        """The resident memory of the container's main process, read from this machine
        (a local engine only: a remote one's pids are not ours to see); None otherwise."""
        import docker.errors
        import psutil

        if self.host.is_remote:
            return None
        try:
            attrs = self._call("inspect", self.client().api.inspect_container, ref)
            pid = int((attrs.get("State") or {}).get("Pid") or 0)
            return psutil.Process(pid).memory_info().rss / (1 << 20) if pid else None
        except (docker.errors.APIError, psutil.Error, ValueError):
            return None

    def observe(self) -> tuple[list[Observed], list[Foreign]]:
        """Rigdeck's containers (by label) and the others on this engine.

        The engine's list is read once (no inspect per container): a container removed
        meanwhile — a doctor's probe, someone's `docker rm` — is not an error.
        """
        import docker.errors

        summaries = self._call("list", self.client().api.containers, all=True)
        mine: list[Observed] = []
        foreign: list[Foreign] = []
        for summary in summaries:
            labels = summary.get("Labels") or {}
            name = str((summary.get("Names") or ["?"])[0]).lstrip("/")
            if labels.get(f"{LABEL}.tool"):
                continue  # a one-shot tool of a bench (run_once removes it)
            if labels.get(MANAGED) == "1":
                try:
                    attrs = self._call("inspect", self.client().api.inspect_container,
                                       summary["Id"])
                except docker.errors.NotFound:
                    continue
                mine.append(self._observed(attrs, attrs["Config"].get("Labels") or {}))
            elif labels.get(f"{LABEL}.probe") != "1":
                foreign.append(Foreign(self.host.name, name, str(summary.get("Image", "")),
                                       str(summary.get("State", ""))))
        return mine, foreign

    def inspect(self, ref: str) -> Observed:
        import docker.errors

        try:
            attrs = self._call("inspect", self.client().api.inspect_container, ref)
        except docker.errors.NotFound:
            return Observed(ref, {}, "gone")
        return self._observed(attrs, attrs["Config"].get("Labels") or {})

    def _observed(self, attrs: dict[str, Any], labels: dict[str, str]) -> Observed:
        state = attrs.get("State", {})
        status = str(state.get("Status", "gone"))
        if status in ("dead", "removing"):
            status = "exited"
        key_env = labels.get(f"{LABEL}.key_env", "")
        key = None
        for entry in attrs.get("Config", {}).get("Env") or []:
            if key_env and entry.startswith(f"{key_env}="):
                key = entry.split("=", 1)[1]
        return Observed(
            ref=str(attrs["Id"]), labels=dict(labels), status=status,
            exit_code=state.get("ExitCode") if status == "exited" else None,
            oom_killed=bool(state.get("OOMKilled")),
            started_at=_timestamp(state.get("StartedAt")), api_key=key)

    def start(self, spec: LaunchSpec, name: str, labels: dict[str, str], api_key: str) -> str:
        """Create and start the container; its id.

        Raises:
            UserError: the image is missing, the engine refused (e.g. no NVIDIA runtime,
                a model folder that does not exist there, port taken); the message says
                which, not Docker's raw error.
        """
        import docker.errors
        import docker.types

        client = self.client()
        if not self.has_image(spec.image):
            raise UserError(
                f"host {self.host.name}: the image {spec.image} is not there. Pull it "
                f"(docker pull {spec.image}) or choose another in "
                f"{setting_place(image_setting(spec.engine))}")
        if not self.host.host_network and not self.has_network("bridge"):
            # a published port needs the bridge: without it the server is unreachable
            raise UserError(f"host {self.host.name}: {NO_BRIDGE}; "
                            f"{host_network_fix(self.host.name)}")
        env = dict(spec.env)
        env[spec.api_key_env] = api_key
        kwargs: dict[str, Any] = {
            "command": list(spec.args), "name": f"{CONTAINER_PREFIX}{name}",
            "labels": {**labels, MANAGED: "1", f"{LABEL}.key_env": spec.api_key_env},
            "environment": env, "detach": True,
            "mounts": [docker.types.Mount(m.target, m.source, type="bind",
                                          read_only=m.read_only) for m in spec.mounts],
            "device_requests": gpu_request(spec.gpus),
            # the engine logs every request: keep at most 2 x 20 MB of it
            "log_config": docker.types.LogConfig(
                type="json-file", config={"max-size": "20m", "max-file": "2"}),
        }
        if self.host.host_network:
            kwargs["network_mode"] = "host"
        else:
            kwargs["ports"] = {f"{spec.port}/tcp": (self.host.bind_address, spec.port)}
        kwargs.update(hardening(spec))
        if spec.ipc_host:
            kwargs["ipc_mode"] = "host"
        if spec.shm_size:
            kwargs["shm_size"] = spec.shm_size
        try:
            container = self._call("create", client.containers.create, spec.image, **kwargs)
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise UserError(f"host {self.host.name}: a container named "
                                f"{CONTAINER_PREFIX}{name} already exists; stop it or "
                                "choose another name") from exc
            raise UserError(explain_start_error(str(exc.explanation or exc),
                                                host=self.host.name, port=spec.port)) from exc
        try:
            self._call("start", container.start)
        except docker.errors.APIError as exc:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise UserError(explain_start_error(str(exc.explanation or exc),
                                                host=self.host.name, port=spec.port)) from exc
        log.info("started container %s (%s) on %s", name, container.short_id, self.host.name)
        return str(container.id)

    def create_only(self, spec: LaunchSpec, name: str, labels: dict[str, str]) -> str:
        """Create (not start) a container; for checks of what the engine would get."""
        container = self._call(
            "create", self.client().containers.create, spec.image, command=list(spec.args),
            name=f"{CONTAINER_PREFIX}{name}", labels={**labels, MANAGED: "1"},
            device_requests=gpu_request(spec.gpus), network_mode="host")
        return str(container.id)

    def log_tail(self, ref: str, lines: int = 200) -> str:
        import docker.errors

        try:
            raw = self._call("logs", self.client().api.logs, ref, tail=lines)
        except docker.errors.NotFound:
            return ""
        return bytes(raw).decode(errors="replace")

    def follow_logs(self, ref: str, tail: int = 200) -> Iterator[str]:
        """Log lines as they come, until the container stops."""
        stream = self._call("logs", self.client().api.logs, ref, stream=True, follow=True,
                            tail=tail)
        pending = b""
        for chunk in stream:
            pending += bytes(chunk)
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")

    def events_since(self, ref: str, since: float) -> list[str]:
        """The engine's events for container `ref` since `since` ("die", "stop", "kill"…);
        the engine keeps them in memory, so after a restart of the engine there are none."""
        import docker.errors

        try:
            events = self._call("events", self.client().api.events, since=int(since) - 1,
                                until=int(time.time()) + 1, filters={"container": ref},
                                decode=True)
            return [str(e.get("Action") or e.get("status") or "") for e in events]
        except docker.errors.APIError as exc:
            log.info("no events for %s: %s", ref[:12], exc)
            return []

    def restart(self, ref: str) -> None:
        """Start an exited container again (same command, labels and key)."""
        self._call("start", self.client().api.start, ref)

    def stop(self, ref: str, timeout_s: float, remove: bool) -> None:
        """SIGTERM, SIGKILL after timeout_s (Docker does both), then remove unless kept."""
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self._call("stop", self.client().api.stop, ref, timeout=int(timeout_s))
            if remove:
                self._call("remove", self.client().api.remove_container, ref, force=True)
