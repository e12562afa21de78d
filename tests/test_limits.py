"""Rate limits per caller (`rate_limit_per_minute`): token buckets, one
limit per caller across every worker of a set."""

from __future__ import annotations

from pathlib import Path

import pytest

from homes import Cli
from servers import RawSession, http_server
from wassette.server.http.limits import PROBES, RateLimiter


def test_a_bucket_allows_a_burst_then_paces(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("wassette.server.http.limits.time.time", lambda: now[0])
    limiter = RateLimiter(3)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(20.0)  # 3 a minute: one every 20 s
    assert limiter.take("b") == 0.0  # another caller, another bucket
    now[0] += 20.0
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0


def test_workers_share_one_bucket_per_caller(tmp_path: Path) -> None:
    """Two limiters on one file (two workers): one limit between them,
    whatever the number of callers (slots are probed, then shared)."""
    first, second = RateLimiter(4, tmp_path / "buckets"), RateLimiter(4, tmp_path / "buckets")
    assert [first.take("alice"), second.take("alice"), first.take("alice"), second.take("alice")] == [0.0] * 4
    assert first.take("alice") > 0 and second.take("alice") > 0
    assert second.take("bob") == 0.0
    callers = [f"c{i}" for i in range(PROBES * 3)]
    assert all(first.take(c) == 0.0 for c in callers)  # many callers: each has a bucket, or a fresh one


def test_the_server_answers_429_past_the_limit(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path]
) -> None:
    assert Cli(env)("component", "load", components["arith"].as_uri()).returncode == 0
    limited = {**env, "WASSETTE_WORKERS": "2", "WASSETTE_RATE_LIMIT_PER_MINUTE": "5"}
    with http_server(limited, tmp_path / "serve.log") as server:
        # 3 calls through worker 0 and 2 through worker 1 (each session's
        # connection reaches one worker; /info on it says which).
        want = {0: 3, 1: 2}
        for _ in range(200):
            if not any(want.values()):
                break
            session = RawSession(server.url)
            worker = session.client.get(f"{server.base}/info").json()["worker"]
            if want[worker]:
                assert session.call(1, "add", {"a": 1, "b": 2}).status_code == 200
                want[worker] -= 1
        assert not any(want.values()), want
        session = RawSession(server.url)
        r = session.call(9, "add", {"a": 1, "b": 1})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 12, r.text
        assert "at most 5 tool calls a minute" in r.json()["error"]["message"]
        listed = session.post({"jsonrpc": "2.0", "id": 10, "method": "tools/list"})
        assert listed.status_code == 200  # only tool calls count


def test_sighup_reloads_the_configuration_without_dropping_connections(
    env: dict[str, str], tmp_path: Path, components: dict[str, Path]
) -> None:
    import signal
    import time

    assert Cli(env)("component", "load", components["arith"].as_uri()).returncode == 0
    config = Path(env["XDG_CONFIG_HOME"]) / "wassette" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("rate_limit_per_minute = 0\n")
    with http_server({**env, "WASSETTE_WORKERS": "2"}, tmp_path / "serve.log") as server:
        session = RawSession(server.url)  # one connection, kept through every reload
        assert all(session.call(i, "add", {"a": 1, "b": i}).status_code == 200 for i in range(5))
        config.write_text("rate_limit_per_minute = 2\n")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        statuses = []
        while 429 not in statuses:  # both workers reload; a fresh bucket allows 2 more first
            assert time.monotonic() < deadline, statuses
            statuses.append(session.call(9, "add", {"a": 1, "b": 1}).status_code)
        assert set(statuses) <= {200, 429}
        config.write_text("rate_limit_per_minute = [broken\n")
        server.proc.send_signal(signal.SIGHUP)
        log = tmp_path / "serve.log"
        deadline = time.monotonic() + 10
        while log.read_text().count("configuration not reloaded") < 2:  # each worker says so
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert session.call(10, "add", {"a": 1, "b": 1}).status_code == 429  # the last good one still holds
        assert server.proc.poll() is None
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
