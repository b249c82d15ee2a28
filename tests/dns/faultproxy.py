"""A DNS forwarder on loopback that can lose the answer to an update after the server
committed it: the real server does the work, the client never hears back."""

from __future__ import annotations

import socket
import struct
import threading

from mxlab.standins.dnsservers import free_port


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class LosingProxy:
    def __init__(self, upstream: str, port: int) -> None:
        self.upstream = (upstream, port)
        self.address = "127.0.0.1"
        self.port = free_port(self.address)
        self.lose_tcp_replies = 0
        self.forwarded_tcp = 0
        self._stop = threading.Event()
        self.tcp = socket.create_server((self.address, self.port))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.address, self.port))
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.threads = [
            threading.Thread(target=self._serve_tcp, daemon=True),
            threading.Thread(target=self._serve_udp, daemon=True),
        ]

    def start(self) -> LosingProxy:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.tcp.close()
        self.udp.close()

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.tcp.accept()
            except TimeoutError:
                continue
            with client:
                try:
                    length = struct.unpack("!H", _read_exact(client, 2))[0]
                    request = _read_exact(client, length)
                    with socket.create_connection(self.upstream, timeout=5) as server:
                        server.sendall(struct.pack("!H", len(request)) + request)
                        size = struct.unpack("!H", _read_exact(server, 2))[0]
                        reply = _read_exact(server, size)
                    self.forwarded_tcp += 1
                    if self.lose_tcp_replies > 0:
                        self.lose_tcp_replies -= 1
                        continue  # the server committed; the client hears nothing
                    client.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, EOFError):
                    continue

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
                server.settimeout(2)
                server.sendto(data, self.upstream)
                try:
                    reply, _ = server.recvfrom(65535)
                except TimeoutError:
                    continue
            self.udp.sendto(reply, client)
