"""The AWS API emulator the tests run against: moto's server, one request at a time.

DynamoDB applies every conditional write atomically. moto checks the condition,
then writes, with no lock between the two, so two concurrent `PutItem`s of one
key under `attribute_not_exists(pk)` can both succeed (seen in CI: a delivery
processed twice out of 1,000 copies). Ferry's exactly-once tests rely on
DynamoDB's guarantee, not on the emulator's luck, so this server hands moto one
request at a time. Connections are still served concurrently, and moto is held
by Python's global interpreter lock anyway, so little speed is lost.

Usage: python emulator.py HOST PORT
"""

import io
import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def one_at_a_time(app):
    lock = threading.Lock()

    def serve(environ, start_response):
        # Read the request before taking the lock: a slow client must not hold it.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        with lock:
            body = app(environ, start_response)
            try:
                return list(body)
            finally:
                if hasattr(body, "close"):
                    body.close()

    return serve


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server does
    run_simple(
        host,
        port,
        one_at_a_time(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
