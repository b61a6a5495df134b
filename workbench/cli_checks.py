"""Checks the ``workbench`` command line makes before it starts anything: argparse types for ports, durations and
ISO times, and a bind test of every port a command will listen on.

Why a bind test up front: ``demo``/``serve``/``run`` start the ingest, the dispatcher console and the trainer's page
one after another and wait for each to answer on its port. When another program already listens there, the wait
succeeds against the OTHER program and the workbench would print its address as its own (a dispatcher would work in
the wrong session); a busy ingest port ended in a traceback. Checking every port before starting anything turns
both into one clear refusal.
"""

from __future__ import annotations

import argparse
import errno
import socket
from datetime import datetime

PORT_MIN, PORT_MAX = 1, 65535


def port_number(text: str) -> int:
    """argparse type of a TCP port: an integer in 1-65535. Raises ``argparse.ArgumentTypeError`` naming the value
    and the range (argparse prefixes the option's name)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give an integer {PORT_MIN}-{PORT_MAX}") \
            from None
    if not PORT_MIN <= port <= PORT_MAX:
        raise argparse.ArgumentTypeError(f"port {port} is out of range; give an integer {PORT_MIN}-{PORT_MAX}")
    return port


def positive_seconds(text: str) -> float:
    """argparse type of a duration in seconds: a finite number greater than 0. Raises
    ``argparse.ArgumentTypeError``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):  # `not >` also refuses NaN
        raise argparse.ArgumentTypeError(f"{text} s: a duration must be a number of seconds greater than 0")
    return value


def iso_time(text: str) -> datetime:
    """argparse type of an ISO 8601 date-time such as ``2016-01-15T12:00`` (with or without an offset). Raises
    ``argparse.ArgumentTypeError`` with an example."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date-time; give e.g. 2016-01-15T12:00 (or 2016-01-15T12:00-05:00)") from None


def port_problem(host: str, option: str, port: int) -> str:
    """Why ``port`` on ``host`` cannot be listened on (empty when it can): a bind test of every address ``host``
    resolves to, with ``SO_REUSEADDR`` as aiohttp and Streamlit (tornado) set it, so a port only in TIME_WAIT from
    an earlier run counts as free while one another program listens on counts as busy. The message names
    ``option`` and what to do."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"--host {host}: cannot resolve this address ({exc.strerror}); give an IP address or a known name"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return (f"{option} {port}: port {port} on {host} is already in use by another program (perhaps "
                            f"another workbench); stop it or choose another {option}")
                if exc.errno == errno.EACCES:
                    return (f"{option} {port}: not allowed to listen on port {port} on {host} (ports below 1024 "
                            f"need privileges); choose another {option}")
                return f"{option} {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another {option}"
    return ""


def ports_problem(host: str, ports: dict[str, int]) -> str:
    """The first problem with the ports a command will listen on (``{"--port": 8080, ...}``), empty when every one
    is free and they are distinct. Two options given the same port are refused too: the second server would fail
    or the wait for it would find the first."""
    seen: dict[int, str] = {}
    for option, port in ports.items():
        if port in seen:
            return f"{seen[port]} and {option} are both {port}; each server needs its own port"
        seen[port] = option
    for option, port in ports.items():
        problem = port_problem(host, option, port)
        if problem:
            return problem
    return ""
