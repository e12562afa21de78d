"""The listening socket of `wassette serve`."""

from __future__ import annotations

import socket

from wassette.runtime.errors import ConfigError


def bind_socket(host: str, port: int, *, shared: bool = False, listen: bool = True) -> socket.socket:
    """A socket bound to the address, listening unless told not to;
    `shared`: one of several on the same address (SO_REUSEPORT: the kernel
    spreads new connections over those that listen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say
    # so, and without it every streamed answer waits out a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if listen:
        sock.listen(128)
    return sock
