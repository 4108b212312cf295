"""The route proxy: carries bytes both ways, cuts live connections and refuses new ones, and lets them through
again when mended. Against a loopback echo server of this test."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from fixes.jetstream.queue import servers
from harness.infra.route_proxy import RouteProxies


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_port():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxies():
    proxies = RouteProxies()
    yield proxies
    proxies.stop()


def _roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(4096)


def test_carries_bytes_both_ways(echo_port, proxies):
    proxy = proxies.add("127.0.0.1", echo_port)
    proxies.start()
    assert _roundtrip(proxy.listen_port, b"hello") == b"hello"
    assert proxy.connections == 1


def test_cut_drops_live_connections_and_refuses_new_ones_until_mended(echo_port, proxies):
    proxy = proxies.add("127.0.0.1", echo_port)
    proxies.start()
    live = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
    live.sendall(b"a")
    assert live.recv(16) == b"a"
    proxies.cut([proxy])
    with pytest.raises(OSError):  # reset by the proxy, or an EOF turned into an error below
        live.sendall(b"b")
        if live.recv(16) == b"":
            raise ConnectionResetError("closed by the proxy")
    live.close()
    assert _roundtrip_or_empty(proxy.listen_port) == b""
    proxies.mend([proxy])
    assert _roundtrip(proxy.listen_port) == b"ping"


def _roundtrip_or_empty(port: int) -> bytes:
    try:
        return _roundtrip(port)
    except OSError:
        return b""


def test_servers_splits_a_comma_separated_url_list():
    assert servers("nats://127.0.0.1:1, nats://127.0.0.1:2,") == ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]
    assert servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]
