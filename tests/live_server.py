"""An app served for real: uvicorn on a free 127.0.0.1 port, in a thread, for tests that
need real HTTP (a browser, concurrent clients, a fuzzer)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI


class _Records(logging.Handler):
    """Every log record of the process while a server runs, as formatted text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class LiveServer:
    """``app`` served by uvicorn on a free 127.0.0.1 port, in a thread; access log on."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # log_config None: uvicorn's records (the access log too) reach the root
        # logger, where the tests read them for keys that must never appear.
        config = uvicorn.Config(app, log_config=None, log_level="info", access_log=True)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self.logs = _Records()

    def start(self) -> None:
        logging.getLogger().addHandler(self.logs)
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the app did not start under uvicorn", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        logging.getLogger().removeHandler(self.logs)
