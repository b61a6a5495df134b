"""Start the trainer's page as a child process, and set up the lab's access codes, for ``workbench serve``/``demo``
and ``workbench trainer`` (kept here so ``cli.py`` only calls it)."""

from __future__ import annotations

import os
import pathlib
import subprocess

from workbench.console.launch import streamlit_command
from workbench.domain.roles import AccessCodes, AccessError
from workbench.store import access_codes

TRAINER_PATH = pathlib.Path(__file__).with_name("trainer.py")
"""The trainer's page script."""


def setup_access(path: pathlib.Path | None, recordings: pathlib.Path) -> tuple[AccessCodes | None, str]:
    """``--access-codes FILE``: the codes (created when FILE is new) and the text to print at start; ``(None,
    warning)`` without FILE. Raises ``SystemExit`` with the problem when FILE cannot be used (inside the
    recordings, malformed)."""
    if path is None:
        return None, ("Roles:   off (every browser reaches every page and endpoint); start with --access-codes FILE "
                      "for participant / trainer / researcher codes")
    try:
        codes, created = access_codes.load_or_create(path, recordings=recordings)
    except AccessError as exc:
        raise SystemExit(f"workbench: {exc}") from None
    text = access_codes.describe(codes, path)
    return codes, ("New access codes generated.\n" if created else "") + text


def trainer_env(*, ingest_url: str, console_url: str, recordings: pathlib.Path, library: pathlib.Path,
                access_file: pathlib.Path | None, ice: str) -> dict[str, str]:
    """The environment the trainer's page reads (:class:`workbench.console.trainer_viewmodel.TrainerConfig`); other
    ``WORKBENCH_*`` variables of this process are not passed on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_") or k == "WORKBENCH_NETNS"}
    env.update({
        "WORKBENCH_INGEST_URL": ingest_url,
        "WORKBENCH_CONSOLE_URL": console_url,
        "WORKBENCH_RECORDINGS": str(recordings.resolve()),
        "WORKBENCH_LIBRARY": str(library.resolve()),
        "WORKBENCH_ICE": ice,
    })
    if access_file is not None:
        env["WORKBENCH_ACCESS_FILE"] = str(access_file.resolve())
    return env


def start_trainer(port: int, host: str, env: dict[str, str]) -> subprocess.Popen:
    """Start the trainer's page on ``host:port`` with ``env`` (:func:`trainer_env`); the caller owns the process
    (``terminate()``, ``wait()``) and waits with ``launch.wait_until_ready``."""
    return subprocess.Popen(streamlit_command(port, host, TRAINER_PATH), env=env, stdin=subprocess.DEVNULL)
