"""A real PostgreSQL server for the shared-state tests: a throwaway cluster
made with Debian's `initdb` in a temp dir, on a free loopback port, started,
stopped (gracefully or not) and restarted by the tests themselves.

PostgreSQL refuses to run as root: as root, the cluster belongs to the
`postgres` user (the Debian package makes it) and its programs run as it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "s3cret-pw"


def bindir() -> Path | None:
    """Debian's server programs (`/usr/lib/postgresql/<major>/bin`), newest major first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Postgres:
    """One cluster: `url` has a password (scram-sha-256 over TCP)."""

    def __init__(self) -> None:
        bin_dir = bindir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup-toolchain.sh installs it)")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="wassette-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.user = ["runuser", "-u", "postgres", "--"]
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if self.user:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "wassette",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self.url = f"postgresql://wassette:{PASSWORD}@127.0.0.1:{self.port}/postgres"
        self.start()

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.user, str(self.bin / program), *args], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` (clients disconnected, clean) or `immediate` (like a crash)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        yield server
    finally:
        server.destroy()
