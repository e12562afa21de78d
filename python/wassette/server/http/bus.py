"""Messages between the worker processes of one `wassette serve --workers N`.

A client's requests may land on any worker (the kernel spreads connections
over them), so a few things one worker learns must reach the others: a
cancellation or an answer from the client for a request another worker runs,
a session that ended, a change to the tool list. Each worker owns one Unix
datagram socket in the set's private directory and sends a message to every
other socket there. Datagrams on a Unix socket are reliable and ordered per
sender; a worker that is gone (its socket refuses) is skipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("wassette.http")

# Larger messages are not sent (a client's answer to a question is far smaller).
MAX_MESSAGE_BYTES = 1 << 20

Handler = Callable[[dict[str, Any]], None]


class Bus:
    """This worker's end: `send` to every other worker, `start` a thread
    that hands each message received to `handler`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.path = directory / f"{name}.sock"
        # Socket addresses are at most 107 bytes; a long TMPDIR makes longer
        # paths. They are named through a descriptor of the directory instead
        # (/proc/self/fd/N/NAME), which also keeps the directory's 0700 guard
        # (an abstract socket would have none).
        self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a worker this one replaces left it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self._address(self.path.name))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE_BYTES * 2)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE_BYTES * 2)
        self._out_lock = threading.Lock()
        self._closed = False

    def send(self, message: dict[str, Any]) -> None:
        """To every other worker (from any thread; never blocks for long:
        a peer whose queue is full is skipped with a warning)."""
        data = json.dumps(message, separators=(",", ":")).encode()
        if len(data) > MAX_MESSAGE_BYTES:
            log.warning("not relayed to other workers: %s message of %d bytes", message.get("t"), len(data))
            return
        try:
            peers = [
                p.name
                for p in os.scandir(self.directory)
                if p.name.endswith(".sock") and p.name != self.path.name
            ]
        except OSError:
            return
        with self._out_lock:
            for peer in peers:
                try:
                    self._out.sendto(data, socket.MSG_DONTWAIT, self._address(peer))
                except (ConnectionRefusedError, FileNotFoundError):
                    pass  # that worker is gone; its replacement binds anew
                except BlockingIOError:
                    log.warning("worker %s is not reading its messages; one was dropped", peer)
                except OSError as e:
                    log.warning("relaying to worker %s failed: %s", peer, e)

    def _address(self, name: str) -> str:
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    def start(self, handler: Handler) -> None:
        threading.Thread(target=self._read, args=(handler,), name="wassette-bus", daemon=True).start()

    def _read(self, handler: Handler) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(MAX_MESSAGE_BYTES + 1)
            except OSError:
                return
            try:
                message = json.loads(data)
                if isinstance(message, dict):
                    handler(message)
            except Exception:  # one bad message must not stop the reader
                log.exception("a message from another worker could not be handled")

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.path.unlink()
        # shutdown() wakes the reader blocked in recv(); close() alone does not.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._out.close()
        with contextlib.suppress(OSError):
            os.close(self._dir_fd)
