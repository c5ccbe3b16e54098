"""A TCP proxy in its own process (plain threads, no eventlet) that cuts every connection on SIGUSR1, or silently
drops all traffic on SIGUSR2.

    python -m tests.faults.proxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT CUT_SECONDS

On SIGUSR1 it drops every open connection and refuses new ones for CUT_SECONDS, as a network partition between
the services and the broker would. On SIGUSR2 it blackholes for CUT_SECONDS: it forwards nothing and closes
nothing, and new connections are accepted and held, as a silent partition (packets dropped, no reset) would; when
it heals, what was sent meanwhile flows on, as TCP's retransmissions would carry it, and a side that gave up
meanwhile finds its peer's socket closed.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time


def main() -> None:
    listen_port, upstream_host, upstream_port, cut_seconds = (
        int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    lock = threading.Lock()
    open_sockets: set[socket.socket] = set()
    state = {"blocked_until": 0.0}
    flowing = threading.Event()
    flowing.set()

    def blackhole(*_args) -> None:
        flowing.clear()
        threading.Timer(cut_seconds, flowing.set).start()

    def cut(*_args) -> None:
        state["blocked_until"] = time.monotonic() + cut_seconds
        with lock:
            doomed = list(open_sockets)
            open_sockets.clear()
        for sock in doomed:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(client: socket.socket) -> None:
        flowing.wait()  # accepted, then held through a blackhole
        try:
            upstream = socket.create_connection((upstream_host, upstream_port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with lock:
            open_sockets.update({client, upstream})
        threads = [threading.Thread(target=pipe, args=pair, daemon=True)
                   for pair in ((client, upstream), (upstream, client))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with lock:
            open_sockets.difference_update({client, upstream})
        client.close()
        upstream.close()

    signal.signal(signal.SIGUSR1, cut)
    signal.signal(signal.SIGUSR2, blackhole)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(128)
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        if time.monotonic() < state["blocked_until"]:
            client.close()
            continue
        threading.Thread(target=serve, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
