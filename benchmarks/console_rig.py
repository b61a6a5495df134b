"""The dispatcher console on loopback, set up and torn down in one place: the real ingest in an asyncio loop thread,
simulated aiortc callers, the console (``streamlit run``) as a child process, and Debian's headless Chromium whose
every request to a host other than 127.0.0.1 is aborted and listed in :attr:`ConsoleRig.foreign`.

Shared by the console's browser tests (through the pytest fixture in ``tests/console_harness.py``) and by
``workbench bench console`` (:mod:`benchmarks.bench_console`); it lives in ``benchmarks`` because that package is
installed with the workbench and ``tests`` is not. Nothing here asserts a time: :meth:`ConsoleRig.wait` polls a
condition with a generous timeout and raises ``AssertionError`` naming what it waited for.

Teardown (:meth:`ConsoleRig.close`, also on errors): browser, console process, callers (stop event, then up to
20 s each), ingest (``stop()``; on a hang the thread stacks are dumped to stderr), loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Flags every rig browser gets (DESIGN.md: without the networking ones Chromium dials out at start-up); the tests'
browsers get the same list (``tests.conftest.CHROMIUM_BASE_ARGS``)."""
FAKE_MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   "--allow-loopback-in-peer-connection")
"""Chromium flags, added to :data:`CHROMIUM_ARGS`, for a page with fake camera and microphone that may open peer
connections on loopback (the tests' browser callers and ``bench_ingest``'s Chromium caller)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_moving_video(path: Path, seconds: float = 90.0, fps: int = 15, size: tuple[int, int] = (320, 240)) -> Path:
    """An MPEG-4 clip at ``path`` whose every frame differs (a bar sweeping over a gradient, a growing blue line), so
    a viewer can count distinct frames. Returns ``path``."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.bit_rate = 800_000
        xs = np.linspace(0, 255, w, dtype=np.uint8)
        for i in range(int(seconds * fps)):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, :, 0] = xs[None, :]
            img[:, :, 1] = (i * 7) % 256
            x = (i * 9) % (w - 40)
            img[40:200, x:x + 40, :] = 255
            img[h - 20:, : (i % w), 2] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_photo(path: Path) -> Path:
    """A 640x480 JPEG photo at ``path`` (orange blob on grey). Returns ``path``."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (640, 480), (120, 120, 120))
    ImageDraw.Draw(img).ellipse((200, 120, 440, 360), fill=(240, 120, 20))
    img.save(path, "JPEG", quality=85)
    return path


class LoopThread:
    """An asyncio loop in a daemon thread, for the ingest and the simulated callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the loop and return its result (``TimeoutError`` after ``timeout`` s)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Any) -> concurrent.futures.Future:
        """Start ``coro`` on the loop; the returned future holds its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def stop_ingest(loop_thread: LoopThread, ingest: Any, timeout_s: float = 30) -> None:
    """``await ingest.stop()``; when it hangs, dump every thread's and task's stack to stderr and raise
    ``AssertionError``."""
    future = loop_thread.submit(ingest.stop())
    try:
        future.result(timeout_s)
    except concurrent.futures.TimeoutError:
        import faulthandler

        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)

        async def tasks() -> None:
            for task in asyncio.all_tasks():
                task.print_stack(file=sys.stderr)

        loop_thread.run(tasks(), 5)
        raise AssertionError(f"the ingest did not stop within {timeout_s} s (stacks on stderr)") from None


class ConsoleRig:
    """One ingest, its simulated callers, one console process and one browser page, owned together.

    ``workdir`` receives ``recordings/`` (the ingest's sessions) and generated media; ``chromium`` is the browser
    executable (None for a rig without a browser). Typical use::

        rig = ConsoleRig(tmp_path, chromium_path)
        try:
            client = rig.start_ingest()
            sid = client.create_session("P01")
            rig.start_console(sid, drt=True)
            page = rig.open_page()
            ...
        finally:
            rig.close()
    """

    def __init__(self, workdir: Path, chromium: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.recordings = self.workdir / "recordings"
        self.chromium = chromium
        self.loop = LoopThread()
        self.ingest: Any = None
        self.client: Any = None
        self.stop_callers = asyncio.Event()
        self.callers: list[concurrent.futures.Future] = []
        self.console: subprocess.Popen | None = None
        self.console_port = free_port()
        self.console_url = f"http://127.0.0.1:{self.console_port}"
        self._console_kwargs: dict[str, Any] = {}
        self.foreign: list[str] = []
        """Requests the browser tried to send to any host but 127.0.0.1 (all aborted)."""
        self._playwright: Any = None
        self.browser: Any = None
        self.page: Any = None
        self._closed = False

    # --- the ingest and its callers -----------------------------------------------------------------------------

    def start_ingest(self, **settings: Any) -> Any:
        """Start the ingest on a free loopback port (ICE ``loopback``; ``settings`` go to ``IngestSettings``);
        returns an :class:`~workbench.console.ingest_client.IngestClient` of it (also :attr:`client`)."""
        from workbench.console.ingest_client import IngestClient
        from workbench.ingest.server import start_ingest
        from workbench.ingest.settings import IngestSettings

        config = IngestSettings(host="127.0.0.1", port=free_port(), recordings=self.recordings, ice_mode="loopback",
                                **settings)
        self.ingest = self.loop.run(start_ingest(config))
        self.client = IngestClient(self.ingest.url)
        return self.client

    def start_caller(self, caller_url: str, video: Path | None, photos: Sequence[tuple[Path, float]] = (),
                     wait_frames: int = 5, call_id: str | None = None,
                     stop: asyncio.Event | None = None) -> concurrent.futures.Future:
        """A simulated aiortc caller on ``caller_url`` streaming ``video`` and uploading ``photos`` (path, seconds
        after the link opened) until the rig closes (or ``stop`` is set: ``rig.loop.loop.call_soon_threadsafe(
        stop.set)``); with ``call_id`` and a video, waits (up to 30 s) until the ingest has received more than
        ``wait_frames`` frames of it."""
        from workbench.runner.caller import PhotoUpload, stream_call

        if stop is not None:
            # Either event hangs up this caller: its own, or the rig's at teardown.
            async def either() -> None:
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.stop_callers.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                stop.set()

            self.loop.submit(either())
        future = self.loop.submit(stream_call(caller_url, video=video, stop=stop or self.stop_callers,
                                              photos=[PhotoUpload(p, t) for p, t in photos]))
        self.callers.append(future)
        if call_id is not None and video is not None:
            self.wait(f"the caller's video of {call_id} at the ingest",
                      lambda: future.done() or self.client.call_status(call_id).get("frames_received", 0) > wait_frames,
                      30, 0.25)
            if future.done():
                future.result()  # raises the caller's error
        return future

    # --- the console --------------------------------------------------------------------------------------------

    def start_console(self, session_id: str | None, **kwargs: Any) -> subprocess.Popen:
        """Start the console on :attr:`console_url` for ``session_id`` (``kwargs`` go to
        :func:`workbench.console.launch.start_console`: ``station``, ``drt``, ``drt_kind``, ``tlx_weights``) and wait
        (up to 60 s) until it answers."""
        from workbench.console.launch import start_console, wait_until_ready

        self._console_kwargs = {"session_id": session_id, **kwargs}
        self.console = start_console(self.ingest.url, port=self.console_port, recordings=self.recordings,
                                     **self._console_kwargs)
        wait_until_ready(self.console_url, 60)
        return self.console

    def kill_console(self) -> None:
        """SIGKILL the console process (a crash: nothing is flushed or closed)."""
        assert self.console is not None
        self.console.kill()
        self.console.wait(10)

    def restart_console(self) -> subprocess.Popen:
        """Start the console again with the settings of the last :meth:`start_console`, on the same port."""
        return self.start_console(**self._console_kwargs)

    # --- the browser --------------------------------------------------------------------------------------------

    def _only_loopback(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def open_page(self, width: int = 1400, height: int = 1000, extra_args: Sequence[str] = (),
                  goto: bool = True) -> Any:
        """Launch Chromium (once) and open one page on the console (``goto``), every request outside 127.0.0.1
        aborted; default timeout 20 s. ``extra_args`` are added Chromium flags."""
        from playwright.sync_api import sync_playwright

        if self.chromium is None:
            raise ValueError("this rig has no browser: pass the Chromium executable to ConsoleRig")
        if self._playwright is None:
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(executable_path=self.chromium,
                                                            args=[*CHROMIUM_ARGS, *extra_args])
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.route("**/*", self._only_loopback)
        self.page = context.new_page()
        self.page.set_default_timeout(20_000)
        if goto:
            self.page.goto(self.console_url)
        return self.page

    # --- waiting and reading the log ----------------------------------------------------------------------------

    def wait(self, what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.05) -> Any:
        """Poll ``check`` until it returns something truthy and return that; raise ``AssertionError`` naming
        ``what`` and the last value after ``timeout_s`` s. With a page open, the pauses go through Playwright
        (``wait_for_timeout``): its route handler (the loopback guard) runs only inside Playwright calls, so a bare
        sleep would hold the page's requests back."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {result!r})")
            if self.page is not None and not self.page.is_closed():
                self.page.wait_for_timeout(interval_s * 1000)
            else:
                time.sleep(interval_s)

    def logged(self, session_id: str, event_type: str, **data: Any) -> Callable[[], list[Any]]:
        """A check for :meth:`wait`: the session's events of ``event_type`` whose payload fields equal ``data``."""
        def check() -> list[Any]:
            return [e for e in self.client.events(session_id) if e.type == event_type
                    and all(getattr(e.data, k) == v for k, v in data.items())]
        return check

    # --- teardown -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Tear everything down in order (browser, console, callers, ingest, loop); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._playwright is not None:
            try:
                self.browser.close()
            finally:
                self._playwright.stop()
                self._playwright, self.browser, self.page = None, None, None
        if self.console is not None:
            if self.console.poll() is None:
                from workbench.console.launch import stop_process

                stop_process(self.console, 15)
            self.console = None
        self.loop.loop.call_soon_threadsafe(self.stop_callers.set)
        for caller in self.callers:
            try:
                caller.result(20)
            except Exception:  # a caller's own failure was reported where it mattered; teardown goes on
                pass
        self.callers = []
        try:
            if self.ingest is not None:
                stop_ingest(self.loop, self.ingest)
        finally:
            self.loop.close()
