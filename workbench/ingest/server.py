"""Running the ingest: :func:`start_ingest` inside an existing event loop (tests, ``workbench demo``) and the
blocking :func:`run_ingest` for ``workbench serve``."""

from __future__ import annotations

import asyncio
import signal
import ssl
from dataclasses import dataclass

from aiohttp import web

from workbench.ingest.app import INGEST, create_app
from workbench.ingest.settings import IngestSettings
from workbench.store.eventlog import Clock
from workbench.store.recordings import Recordings


def _ssl_context(settings: IngestSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    if not settings.tls_key:
        raise ValueError("TLS needs both a certificate and a key (--cert F --key F)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


@dataclass
class IngestHandle:
    """A running ingest: ``url`` (base URL it listens on), ``app``; ``await stop()`` ends it."""

    url: str
    app: web.Application
    runner: web.AppRunner
    _stopped: bool = False

    async def stop(self) -> None:
        """End every call (``media.stream_ended``, ``call.ended`` reason ``server_stopped``), close every peer
        connection and viewer socket, close the logs and stop listening."""
        if self._stopped:
            return
        self._stopped = True
        await self.app[INGEST].stop()
        await self.runner.cleanup()


async def start_ingest(
    settings: IngestSettings, recordings: Recordings | None = None, *, clock: Clock | None = None
) -> IngestHandle:
    """Start the ingest on ``settings.host:settings.port`` in the running event loop."""
    recordings = recordings or Recordings(settings.recordings)
    app = create_app(settings, recordings=recordings, clock=clock)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=_ssl_context(settings))
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if settings.tls_cert else "http"
    return IngestHandle(url=f"{scheme}://{settings.host}:{settings.port}", app=app, runner=runner)


def run_ingest(settings: IngestSettings) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM), then end every call and close the logs."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        handle = await start_ingest(settings)
        print(f"ingest listening on {handle.url} (caller links: {settings.base_url}/c/...)", flush=True)
        try:
            await stop.wait()
        finally:
            await handle.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
