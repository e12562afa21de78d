"""Network probes: each export tries one kind of network access."""

import encodings.idna  # noqa: F401  (getaddrinfo needs it; lazy imports fail at run time)
import socket

import wit_world
from componentize_py_types import Err


def _fail(e: BaseException) -> Err[str]:
    return Err(f"{type(e).__name__}: {e}")


class WitWorld(wit_world.WitWorld):
    def resolve(self, host: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)
        except Exception as e:
            raise _fail(e) from None
        return sorted({info[4][0] for info in infos})

    def tcp_exchange(self, host: str, port: int, payload: str) -> str:
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(payload.encode())
                chunks = []
                while sum(map(len, chunks)) < 65536:
                    data = s.recv(4096)
                    if not data:
                        break
                    chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
        except Exception as e:
            raise _fail(e) from None

    def udp_exchange(self, host: str, port: int, payload: str) -> str:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(payload.encode(), (host, port))
                data, _ = s.recvfrom(65536)
            return data.decode(errors="replace")
        except Exception as e:
            raise _fail(e) from None

    def tcp_listen(self, port: int) -> int:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("0.0.0.0", port))
            s.listen(1)
            return int(s.getsockname()[1])
        except Exception as e:
            raise _fail(e) from None
