"""The stack deployed into an embedded moto server on 127.0.0.1 (`coldreach local up`).

The server is moto's, run in this process; the program is the real one, run
by the offline runtime with the moto backend, so every resource is created
through the AWS APIs moto implements and can be inspected with boto3 or the
AWS CLI (`--endpoint-url`). Nothing runs: no container, database or Redis
process starts. docs/local-demo.md says what is real and what is not.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coldreach.errors import UserError
from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment
from coldreach.runtime.emulator import MotoBackend, UnsupportedResource
from coldreach.runtime.model import mask

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As werkzeug binds: a port left in TIME_WAIT by a previous run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as err:
            message = f"cannot listen on {HOST}:{port}: {err.strerror}; pick another --port"
            raise UserError(message) from None


@contextmanager
def moto_server(port: int | None = None) -> Iterator[str]:
    """A moto server on 127.0.0.1 for the duration of the block; yields its URL."""
    from moto.server import ThreadedMotoServer

    # One line per request on stderr would bury the progress and the outputs.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    chosen = port or free_port()
    _check_port(chosen)  # werkzeug would fail inside the thread and never signal readiness
    server = ThreadedMotoServer(ip_address=HOST, port=chosen, verbose=False)
    server.start()
    url = f"http://{HOST}:{chosen}"
    # moto's accounts live in the process, not the server: a server started after
    # another in the same process would see its resources. Each one starts empty.
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    try:
        yield url
    finally:
        server.stop()


def deploy(stack: str, backend: MotoBackend, phase: int | None = None) -> Deployment:
    """Runs the stack's program against the moto server `backend` speaks to."""
    try:
        return evaluate_stack(stack, phase, backend=backend)
    except UnsupportedResource as err:
        raise UserError(str(err)) from None


def stack_outputs(deployment: Deployment) -> dict[str, Any]:
    """The outputs as `pulumi stack output --json` prints them (secrets masked)."""
    return mask(deployment.outputs)


def write_outputs(path: Path, outputs: dict[str, Any]) -> None:
    """Written whole or not at all, so a reader polling for the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(outputs, indent=2) + "\n")
    os.replace(partial, path)
