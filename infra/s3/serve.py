"""A real S3-compatible server (moto) on 127.0.0.1 for the tests.

moto's stock `moto_server` is threaded and checks-then-writes without a lock,
so a conditional PUT (`If-None-Match: *`, how delta-rs commits) can be lost
under concurrent writers. Served single-threaded, every request is atomic and
the second of two racing commits gets its 412, which is what Delta needs.
"""

import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1])
    os.environ["MOTO_PORT"] = str(port)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
