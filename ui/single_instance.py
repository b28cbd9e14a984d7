"""One Rigdeck per user and config folder: a second launch brings the first to the front."""

import getpass
import hashlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

_ACTIVATE = b"activate\n"


def instance_key(config_folder: str) -> str:
    """A local-socket name unique to this user and config folder."""
    digest = hashlib.sha256(config_folder.encode()).hexdigest()[:12]
    return f"rigdeck-{getpass.getuser()}-{digest}"


class SingleInstance(QObject):
    """Claims the instance key; `activated` fires when another launch asks for the window."""

    activated = Signal()

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self._server: QLocalServer | None = None

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """Ask a running instance to show itself; False when none answers."""
        socket = QLocalSocket()
        socket.connectToServer(self.key)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(_ACTIVATE)
        socket.flush()
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return True

    def claim(self) -> bool:
        """Become the instance; False when another one runs (it has been told to show)."""
        if self.notify_running():
            return False
        QLocalServer.removeServer(self.key)  # a stale socket left by a crash
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.key):
            log.warning("single-instance socket %s: %s", self.key, server.errorString())
            return True
        server.newConnection.connect(self._on_server_new_connection)
        self._server = server
        return True

    def _on_server_new_connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._on_socket_ready(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_socket_ready(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).startswith(_ACTIVATE.strip()):
            self.activated.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
