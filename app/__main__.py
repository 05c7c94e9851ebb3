"""`python -m app`: check the configuration, load the model, then serve with uvicorn."""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from pydantic import ValidationError

from app import observability
from app.main import create_app
from app.registry import ConfigurationError
from app.settings import Settings

# The standard library's loop, not uvloop: single-series /forecast at 64 connections on this 2-core machine,
# uvloop served about as many requests/s (2,545 against 2,369; 5 wrk runs each) but its p99 was 340-420 ms
# against 28-47 ms.
LOOP = "asyncio"


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes 1-64, got {text!r}")
    return int(text)


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, found before the models load, not after."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror} (pick another with --port)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve shelfcast forecasts.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8000)
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="uvicorn worker processes (default 1); each loads its own sessions and answers on the same port",
    )
    args = parser.parse_args(argv)
    if problem := _cannot_listen(args.host, args.port):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        settings = Settings()
        app = create_app(settings)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid configuration: {problems}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    observability.configure_logging(settings.log_level)
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, loop=LOOP, log_config=None, access_log=False)
        return 0
    del app  # it proved the configuration; every worker process builds its own
    uvicorn.run(
        "app.main:create_worker_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        loop=LOOP,
        log_config=None,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
