"""The container image (deploy/container/Dockerfile, made by scripts/image.sh
from the wheel of scripts/release.sh), built and run here on a real Docker
engine: Debian's docker.io, started by these tests (`dockerd --bridge=none
--iptables=false`, containers on the host's network, loopback only), with a
base image made by debootstrap from the Debian mirror (no image registry).

Run as the Helm chart runs it: user 10001, read-only root filesystem, a
volume for its state, an in-memory /tmp, every capability dropped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from homes import DEV_CACHE, Cli
from postgres import Postgres, bindir, free_port
from servers import http_session, text
from test_shared_state import KEY, ok, replica

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starting a Docker engine needs root"),
    pytest.mark.timeout(1800),
]


class Docker:
    """A Docker engine of the tests' own: images kept in the dev cache."""

    def __init__(self) -> None:
        if shutil.which("dockerd") is None or shutil.which("debootstrap") is None:
            pytest.fail("docker.io and debootstrap are not installed: run scripts/setup-toolchain.sh")
        self.run_dir = Path(tempfile.mkdtemp(prefix="wst-docker-"))
        self.host = f"unix://{self.run_dir}/docker.sock"
        self.log = self.run_dir / "dockerd.log"
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    "--bridge=none",
                    "--iptables=false",
                    "--data-root",
                    str(DEV_CACHE / "docker"),
                    "--exec-root",
                    str(self.run_dir / "exec"),
                    "--pidfile",
                    str(self.run_dir / "dockerd.pid"),
                    "-H",
                    self.host,
                ],
                stdout=sink,
                stderr=sink,
            )
        deadline = time.monotonic() + 60
        while self("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"dockerd did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    engine = Docker()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def image(docker: Docker, wheel: Path) -> str:
    done = subprocess.run(
        ["bash", "scripts/image.sh", str(wheel), "--tag", "wassette:test"],
        cwd=Path(__file__).resolve().parent.parent,
        env=docker.env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def run(docker: Docker, image: str, name: str, *args: str, env: dict[str, str] | None = None) -> int:
    """Starts the image as the chart does; returns the port it serves on."""
    port = free_port()
    docker("rm", "-f", name, check=False)
    docker("volume", "rm", "-f", f"{name}-state", check=False)
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", f"{name}-state:/var/lib/wassette", *flags, *args[:-1] if args else (),
        image, "serve", "--bind-address", f"127.0.0.1:{port}", *(args[-1:] if args else ()),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(docker("logs", name, check=False).stderr)
        time.sleep(0.1)


def test_the_image_is_non_root_and_starts_wassette(docker: Docker, image: str) -> None:
    config: dict[str, Any] = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["wassette"] and config["Cmd"][0] == "serve"
    assert "/var/lib/wassette" in config["Volumes"]
    version = docker("run", "--rm", "--network", "none", "--read-only", image, "--version")
    assert version.stdout.startswith("wassette ")


def test_the_container_serves_read_only_and_writes_only_its_volumes(
    docker: Docker, image: str, components: dict[str, Path]
) -> None:
    name = "wst-serve"
    port = run(docker, image, name, "-v", f"{components['io']}:/components/io.wasm:ro", "--workers=2")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            assert r.status == 200

        async def main() -> None:
            async with http_session(f"http://127.0.0.1:{port}/mcp") as s:
                r = await s.call_tool("load-component", {"path": "file:///components/io.wasm"})
                assert not r.is_error, text(r)
                r = await s.call_tool("env-count", {})
                assert not r.is_error and r.structured_content == {"result": 0}, text(r)

        anyio.run(main)
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        for path in ("/etc/x", "/opt/wassette/x", "/usr/x", "/x", "/components/x"):
            refused = docker("exec", name, "touch", path, check=False)
            assert refused.returncode != 0 and "Read-only file system" in refused.stderr, (path, refused)
        for path in ("/var/lib/wassette/x", "/tmp/x"):
            docker("exec", name, "touch", path)
        stored = docker("exec", name, "ls", "/var/lib/wassette/data/wassette/components").stdout.split()
        assert "io.wasm" in stored  # the load went to the volume
        processes = docker("top", name, "-o", "pid,user,comm").stdout
        assert "wassette-w1" in processes  # the worker set runs in the container
        assert {line.split()[1] for line in processes.splitlines()[1:]} == {"10001"}  # none as root
    finally:
        docker("rm", "-f", name, check=False)


@pytest.mark.skipif(bindir() is None, reason="PostgreSQL is not installed")
def test_the_container_as_a_replica_of_a_shared_state(
    docker: Docker, image: str, tmp_path: Path, components: dict[str, Path]
) -> None:
    """The image joins a fleet: a component loaded by another replica (the
    CLI here) is served by the container from the shared PostgreSQL state."""
    pg = Postgres()
    name = "wst-replica"
    try:
        ok(Cli(replica(tmp_path, "cli", pg.url))("component", "load", components["arith"].as_uri()))
        env = {"WASSETTE_STATE": pg.url, "WASSETTE_SECRETS_KEY": KEY, "WASSETTE_WORKERS": "1"}
        port = run(docker, image, name, env=env)

        async def main() -> None:
            async with http_session(f"http://127.0.0.1:{port}/mcp") as s:
                r = await s.call_tool("add", {"a": 40, "b": 2})
                assert not r.is_error and r.structured_content == {"result": 42}, text(r)

        anyio.run(main)
    finally:
        docker("rm", "-f", name, check=False)
        pg.destroy()
