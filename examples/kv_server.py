"""A tiny Redis-like key-value server, run as a child process by realistic_app.py.

It speaks a line protocol over TCP (``SET key value``, ``GET key``, ``PING``) and prints
``kv: ready to accept connections on port N`` once it listens, like redis-server does.
On SIGTERM it says goodbye and exits 0. Standard library only: it is "some other program".

    python examples/kv_server.py 6380
"""

from __future__ import annotations

import signal
import socketserver
import sys
import threading

STORE: dict[str, str] = {}


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:
            parts = raw.decode().split()
            if not parts:
                continue
            command, args = parts[0].upper(), parts[1:]
            if command == "PING":
                reply = "PONG"
            elif command == "SET" and len(args) == 2:
                STORE[args[0]] = args[1]
                reply = "OK"
            elif command == "GET" and len(args) == 1:
                reply = STORE.get(args[0], "(nil)")
            else:
                reply = "ERR unknown command"
            self.wfile.write(f"{reply}\n".encode())


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler) as server:

        def stop(signum: int, _frame: object) -> None:
            print(f"kv: got {signal.Signals(signum).name}, saving and exiting", flush=True)
            threading.Thread(target=server.shutdown).start()  # shutdown() blocks serve_forever

        signal.signal(signal.SIGTERM, stop)
        print(f"kv: ready to accept connections on port {server.server_address[1]}", flush=True)
        server.serve_forever()
    print("kv: bye", flush=True)


if __name__ == "__main__":
    main()
