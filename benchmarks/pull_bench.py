"""Pull + verify timings, per step, from a real registry on loopback.

Starts Debian's docker-registry on a free port, publishes
- `signed/arith` (the committed Sigstore fixture: 604 bytes, a Sigstore bundle
  attached as a referrer, verified against the fixture's trusted root), and
- `keyed/time-server` (the 12.5 MB JS fixture, signed with a cosign key pair
  generated here),
then loads each N times through `Runtime.load_component` (the path the CLI
and MCP use) and reports, from the progress callback's timestamps, the
median time of each step: resolve (manifest), signatures (discover + verify),
download (blob, digest checked), compile + install. Each load uses a fresh
component directory; `--cold` also uses a fresh compiled-artifact cache.
The first load of a process is reported on its own: it pays for imports
(sigstore) and trust-root parsing, which later loads reuse.

Usage: python benchmarks/pull_bench.py [--runs N] [--cold] [--json OUT]
Needs docker-registry (scripts/setup-toolchain.sh), the engine and the fixtures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "distribution"))

from oci_helpers import SIGSTORE, attach_bundle  # noqa: E402

STEPS = ("resolve", "signatures", "download", "compile+install", "total")


def start_registry(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    exe = shutil.which("docker-registry") or sys.exit("docker-registry is not installed")
    proc = subprocess.Popen(
        [exe, "serve", str(tmp / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("docker-registry did not start")


def build_fixture(name: str) -> Path:
    spec = importlib.util.spec_from_file_location("fixtures_build", REPO / "tests/components/build.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return Path(mod.build([name])[name])


def timed_load(uri: str, env: dict[str, str]) -> dict[str, float]:
    from wassette.distribution.loading import load_component
    from wassette.runtime.config import Settings
    from wassette.runtime.runtime import Runtime

    marks: list[tuple[str, float]] = []

    def progress(message: str, done: int | None = None, total: int | None = None) -> None:
        if done is None:
            marks.append((message, time.perf_counter()))

    runtime = Runtime(Settings.load(env=env))
    start = time.perf_counter()
    load_component(runtime, uri, progress=progress)
    end = time.perf_counter()

    def at(prefix: str) -> float:
        return next(t for m, t in marks if m.startswith(prefix))

    return {
        "resolve": at("checking signatures") - at("resolving"),
        "signatures": at("downloading component") - at("checking signatures"),
        "download": at("compiling") - at("downloading component"),
        "compile+install": end - at("compiling"),
        "total": end - start,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="fresh compiled-artifact cache for every load")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from wassette.distribution import artifact
    from wassette.distribution.httpclient import HttpClient
    from wassette.distribution.reference import parse
    from wassette.distribution.registry import OCI_MANIFEST, RegistryClient

    tmp = Path(tempfile.mkdtemp(prefix="wassette-pull-bench-"))
    proc, host = start_registry(tmp)
    try:

        def push(repo: str, wasm: bytes, title: str) -> str:
            built = artifact.build(wasm, title=title)
            client = RegistryClient(
                parse(f"{host}/{repo}:1"), HttpClient(allow_insecure_loopback=True), push=True
            )
            for blob in built.blobs.values():
                client.push_blob(blob)
            return client.push_manifest(built.manifest, OCI_MANIFEST, "1")

        manifest = (SIGSTORE / "manifest.json").read_bytes()
        digest = push("signed/arith", (SIGSTORE / "arith.wasm").read_bytes(), "arith.wasm")
        attach_bundle(
            host,
            "signed/arith",
            digest,
            len(manifest),
            (SIGSTORE / "tester.sigstore.json").read_bytes(),
            "referrer",
        )

        key = ec.generate_private_key(ec.SECP256R1())
        pub = tmp / "cosign.pub"
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        ts = build_fixture("time-server").read_bytes()
        ts_digest = push("keyed/time-server", ts, "time-server.wasm")
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": f"{host}/keyed/time-server"},
                    "image": {"docker-manifest-digest": ts_digest},
                    "type": "cosign container image signature",
                },
                "optional": None,
            }
        ).encode()
        import base64

        sig = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        client = RegistryClient(
            parse(f"{host}/keyed/time-server:1"), HttpClient(allow_insecure_loopback=True), push=True
        )
        layer = client.push_blob(payload)
        empty = client.push_blob(b"{}")
        sig_manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": empty,
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "digest": layer,
                        "size": len(payload),
                        "annotations": {"dev.cosignproject.cosign/signature": sig},
                    }
                ],
            }
        ).encode()
        client.push_manifest(sig_manifest, OCI_MANIFEST, ts_digest.replace(":", "-") + ".sig")

        config = tmp / "config.toml"
        config.write_text(
            f'[signatures]\ntrusted_root = "{SIGSTORE / "trusted_root.json"}"\n'
            '[[signatures.trust]]\npattern = "127.0.0.1:*/signed/*"\n'
            'identities = [{ identity = "tester@example.com", issuer = "https://oauth2.sigstore.dev/auth" }]\n'
            f'[[signatures.trust]]\npattern = "127.0.0.1:*/keyed/*"\nkeys = ["{pub}"]\n'
        )
        results: dict[str, Any] = {}
        for label, uri in (
            ("arith (sigstore bundle)", f"oci://{host}/signed/arith:1"),
            ("time-server 12.5 MB (cosign key)", f"oci://{host}/keyed/time-server:1"),
        ):
            runs = []
            for i in range(args.runs):
                home = tmp / f"home-{len(results)}-{i}"
                cache = home / "compiled" if args.cold else tmp / "compiled"
                env = {
                    "HOME": str(home),
                    "XDG_DATA_HOME": str(home / "data"),
                    "XDG_CONFIG_HOME": str(home / "cfg"),
                    "WASSETTE_CACHE_DIR": str(cache),
                    "WASSETTE_CONFIG_FILE": str(config),
                    "WASSETTE_ALLOW_INSECURE_LOOPBACK": "1",
                }
                runs.append(timed_load(uri, env))
            rest = runs[1:] or runs
            results[label] = {
                "first": runs[0],
                "median": {s: statistics.median(r[s] for r in rest) for s in STEPS},
            }
        print(f"{'component':34} {'load':7} " + " ".join(f"{s:>15}" for s in STEPS))
        for label, r in results.items():
            for which in ("first", "median"):
                print(f"{label:34} {which:7} " + " ".join(f"{r[which][s] * 1000:13.1f}ms" for s in STEPS))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
