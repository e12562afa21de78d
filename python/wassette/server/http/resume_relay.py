"""A polled stream resumed on another worker (`serve --workers N`).

The server ends a long call's response (resume.py) in the worker running
the call; the client's `GET` with `Last-Event-ID` may reach any worker. The
stream id names the worker that keeps it (`w<n>x...`): the worker the client
reached asks that one over the set's bus, which hands it what it kept and
then every event as it comes, up to the answer (a message larger than
INLINE_BYTES travels as a file in the set's private directory). The client
leaving stops the call, as it would have on the worker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wassette.server.http.wire import Stream

if TYPE_CHECKING:
    from wassette.server.core.jsonrpc import Id
    from wassette.server.core.session import Session
    from wassette.server.http.sessions import HttpSession

log = logging.getLogger("wassette.http")

# How long the worker the client reached waits for the keeper's first word.
FIRST_WORD_S = 5.0
INLINE_BYTES = 512 * 1024
_KEEPER = re.compile(r"w(\d+)x")

Send = Callable[[dict[str, Any]], None]


def keeper_of(stream_id: str) -> int | None:
    """The worker a stream id names, if it names one."""
    found = _KEEPER.match(stream_id)
    return int(found.group(1)) if found else None


class BusStream:
    """At the keeper: a resumed stream whose client is connected to another
    worker (what `PostChannel` pushes goes there)."""

    def __init__(self, relay: ResumeRelay, to: int, stream_id: str) -> None:
        self.relay, self.to, self.stream_id = relay, to, stream_id
        self.closed = False

    def push(self, data: bytes | None) -> bool:
        if self.closed:
            return False
        if data is None:
            self.close()
        else:
            self.relay.send_data(self.to, self.stream_id, data)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.relay.send(self.to, {"t": "rpush", "stream": self.stream_id, "end": True})
            self.relay.serving.pop(self.stream_id, None)


class _Reading:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.first = asyncio.Event()
        self.missing = False


class ResumeRelay:
    """One tenant's part, in one worker."""

    def __init__(self, send: Send, directory: Path, number: int, loop: asyncio.AbstractEventLoop) -> None:
        self._send = send
        self.directory = directory
        self.number = number
        self.loop = loop
        self._reading: dict[str, _Reading] = {}  # here: streams resumed from another worker
        self.serving: dict[str, tuple[Session, Id | None, BusStream]] = {}  # at the keeper

    def send(self, to: int, message: dict[str, Any]) -> None:
        self._send({**message, "to": to, "from": self.number})

    def send_data(self, to: int, stream_id: str, data: bytes) -> None:
        message: dict[str, Any] = {"t": "rpush", "stream": stream_id}
        if len(data) > INLINE_BYTES:
            name = f"resume-{secrets.token_hex(12)}.sse"
            (self.directory / name).write_bytes(data)
            message["file"] = name
        else:
            message["data"] = data.decode("utf-8")
        self.send(to, message)

    # -- the worker the client reached ----------------------------------------------

    async def read(self, sid: str, stream_id: str, keeper: int) -> Stream | None:
        """The resumed stream, fed by its keeper; None when it keeps none."""
        log.debug("worker %d resumes stream %s, kept by worker %d", self.number, stream_id, keeper)
        reading = _Reading(Stream(self.loop))
        self._reading[stream_id] = reading
        self.send(keeper, {"t": "resume", "sid": sid, "stream": stream_id})
        try:
            await asyncio.wait_for(reading.first.wait(), FIRST_WORD_S)
        except TimeoutError:
            reading.missing = True
        if reading.missing:
            self._reading.pop(stream_id, None)
            return None
        return reading.stream

    def gone(self, stream_id: str, keeper: int) -> None:
        """The client left the resumed stream: its call stops at the keeper."""
        if self._reading.pop(stream_id, None) is not None:
            self.send(keeper, {"t": "rgone", "stream": stream_id})

    def _pushed(self, message: dict[str, Any]) -> None:
        reading = self._reading.get(str(message.get("stream")))
        if reading is None:
            return
        if message.get("missing"):
            reading.missing = True
        elif "file" in message:
            path = self.directory / str(message["file"])
            with contextlib.suppress(OSError):
                reading.stream.push(path.read_bytes())
                path.unlink()
        elif isinstance(message.get("data"), str):
            reading.stream.push(message["data"].encode("utf-8"))
        if message.get("end"):
            reading.stream.close()
            self._reading.pop(str(message.get("stream")), None)
        reading.first.set()

    # -- the keeper ---------------------------------------------------------------------

    def _serve(self, held: HttpSession | None, message: dict[str, Any]) -> None:
        stream_id, to = str(message.get("stream")), message.get("from")
        if not isinstance(to, int):
            return
        waiting = held.resumable.take(stream_id) if held is not None else None
        if held is None or waiting is None:
            self.send(to, {"t": "rpush", "stream": stream_id, "missing": True})
            return
        channel = waiting.channel
        assert channel.framing is not None
        bus = BusStream(self, to, stream_id)
        self.serving[stream_id] = (held.session, waiting.request_id, bus)
        bus.push(channel.framing.take_kept())  # the first word, even if empty
        if channel.final is not None:
            bus.push(channel.frame(channel.final))
            bus.close()
            return
        channel.stream = bus  # type: ignore[assignment]  # a Stream's push/close/closed

    def _gone(self, message: dict[str, Any]) -> None:
        entry = self.serving.pop(str(message.get("stream")), None)
        if entry is not None:
            session, request_id, bus = entry
            bus.closed = True
            session.abandon(request_id)

    # -- the bus --------------------------------------------------------------------------

    def received(self, message: dict[str, Any], held_of: Callable[[str], HttpSession | None]) -> None:
        """A resume message (kind resume, rpush, rgone), on the bus's thread."""
        if message.get("to") != self.number:
            return
        kind, loop = message.get("t"), self.loop
        if kind == "rpush":
            loop.call_soon_threadsafe(self._pushed, message)
        elif kind == "resume":
            sid = str(message.get("sid"))
            loop.call_soon_threadsafe(lambda: self._serve(held_of(sid), message))
        elif kind == "rgone":
            loop.call_soon_threadsafe(self._gone, message)
