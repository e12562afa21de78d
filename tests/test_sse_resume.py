"""Event streams a client can resume (SEP-1699, 2025-11-25): a session's
call answered as a stream starts with a priming event (an id, `retry:`, no
data) and gives every event an id; with `sse_poll_after_ms` the server ends
a long call's response early, keeps what the call says meanwhile, and a GET
with `Last-Event-ID` brings it and the answer — with a raw client and with
the official MCP client."""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest

from homes import Cli
from servers import RawSession, http_server, http_session, messages
from test_mcp_features import text


@pytest.fixture
def loaded(cli: Cli, components) -> Cli:
    assert cli("component", "load", components["conformance"].as_uri()).returncode == 0
    return cli


def events(body: str) -> list[dict[str, str]]:
    """The SSE events of a body: their fields (id, retry, data, event)."""
    out = []
    for block in re.split(r"\r\n\r\n|\n\n", body):
        fields: dict[str, str] = {}
        for line in re.split(r"\r\n|\n", block):
            if line and not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value
        if fields:
            out.append(fields)
    return out


def test_a_streamed_answer_is_primed_and_every_event_has_an_id(env, loaded, tmp_path: Path) -> None:
    with http_server(env, tmp_path / "serve.log", "--workers", "1") as server:
        s = RawSession(server.url)
        r = s.call(1, "sleep_ms", {"ms": 400}, _meta={"progressToken": "p"})
        assert r.headers["content-type"].startswith("text/event-stream")
        found = events(r.text)
        assert found[0]["data"] == "" and found[0]["retry"] == "500" and found[0]["id"].endswith("-0")
        stream = found[0]["id"].rsplit("-", 1)[0]
        rest = found[1:]
        assert rest and all(e["id"].startswith(stream + "-") for e in rest)
        assert [int(e["id"].rsplit("-", 1)[1]) for e in rest] == list(range(1, len(rest) + 1))
        assert messages(r)[-1]["result"]["content"][0]["text"] == "slept 400 ms"
        # Nothing to resume: the stream ended with its answer.
        gone = s.client.get(server.url, headers={**s.headers, "last-event-id": rest[-1]["id"]})
        assert gone.status_code == 404 and "no stream to resume" in gone.text


def test_a_polled_stream_is_resumed_with_last_event_id(env, loaded, tmp_path: Path) -> None:
    """The server ends the response after 300 ms; the call goes on; its
    progress meanwhile and its answer come with the resumed stream."""
    env = {**env, "WASSETTE_SSE_POLL_AFTER_MS": "300"}
    with http_server(env, tmp_path / "serve.log") as server:  # one worker: polling picks it
        s = RawSession(server.url)
        r = s.call(1, "sleep_ms", {"ms": 1200}, _meta={"progressToken": "p"})
        first = events(r.text)
        # Ended early: primed, and without the answer.
        assert first[0]["data"] == "" and not any('"result"' in e.get("data", "") for e in first)
        progress = [m["params"]["progress"] for m in messages(r) if "params" in m]
        last, later, answers, polls = first[-1]["id"], [], [], 0
        while not answers:  # as a client does: wait `retry`, resume (once: it stays until the answer)
            polls += 1
            assert polls == 1, "the resumed stream ended before the answer"
            time.sleep(int(first[0]["retry"]) / 1000)
            resumed = s.client.get(server.url, headers={**s.headers, "last-event-id": last})
            assert resumed.status_code == 200, resumed.text
            got = events(resumed.text)
            later += got
            last = got[-1]["id"] if got else last
            answers = [m for m in messages(resumed) if m.get("id") == 1]
            progress += [m["params"]["progress"] for m in messages(resumed) if "params" in m]
        assert answers[0]["result"]["content"][0]["text"] == "slept 1200 ms"
        seen = [int(e["id"].rsplit("-", 1)[1]) for e in first[1:] + later if "id" in e]
        assert seen == list(range(1, len(seen) + 1)), "an event was lost or repeated"
        assert progress == sorted(progress) and progress[-1] == 1200, progress
        # Another session never resumes this one's streams.
        other = RawSession(server.url)
        r = other.client.get(server.url, headers={**other.headers, "last-event-id": last})
        assert r.status_code == 404


def test_the_official_client_resumes_a_polled_call(env, loaded, tmp_path: Path) -> None:
    env = {**env, "WASSETTE_SSE_POLL_AFTER_MS": "300"}
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async def run(url: str) -> None:
        async with http_session(url) as s:
            r = await s.call_tool("sleep_ms", {"ms": 1000}, progress_callback=on_progress)
            assert not r.is_error and text(r) == "slept 1000 ms"
            r = await s.call_tool("test_simple_text", {})
            assert text(r) == "This is a simple text response for testing."

    with http_server(env, tmp_path / "serve.log") as server:
        anyio.run(run, server.url)
    assert progress and progress[-1] == 1000


def test_a_polled_stream_resumed_on_another_worker(env, loaded, tmp_path: Path) -> None:
    """With a worker set, the GET that resumes a stream may reach another
    worker than the one running the call: it is fed from there, up to the
    answer."""
    env = {**env, "WASSETTE_SSE_POLL_AFTER_MS": "300", "WASSETTE_LOG": "debug"}
    log = tmp_path / "serve.log"
    with http_server(env, log, "--workers", "2") as server:
        for _ in range(24):  # new connections: 1 in 2 reaches the other worker
            s = RawSession(server.url)
            r = s.call(1, "sleep_ms", {"ms": 900}, _meta={"progressToken": "p"})
            first = events(r.text)
            assert first[0]["data"] == "" and first[0]["id"].startswith("w")
            time.sleep(int(first[0]["retry"]) / 1000)
            s.client.close()
            s.client = httpx.Client(timeout=30)  # a new connection for the GET
            resumed = s.client.get(server.url, headers={**s.headers, "last-event-id": first[-1]["id"]})
            assert resumed.status_code == 200, resumed.text
            answers = [m for m in messages(resumed) if m.get("id") == 1]
            assert answers and answers[0]["result"]["content"][0]["text"] == "slept 900 ms", resumed.text
            if "resumes stream" in log.read_text():
                break
        else:
            raise AssertionError("no stream was resumed on the other worker")
