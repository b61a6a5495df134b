"""The link aids (issue 11's proposals and triage advice) run off the ingest's event loop, which also carries live
WebRTC: while a session's first reports (the scenario copy read, photos decoded, every pair scored) are handled, a
heartbeat task on the ingest's loop keeps ticking within 50 ms, the work runs on another thread, and the aids'
events are the ones the synchronous listener writes for the same log, in the same order."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.test_links import MULTI, _events
from workbench.domain import events as ev
from workbench.ingest.app import INGEST
from workbench.ingest.automation import Automation
from workbench.ingest.links import AIDS
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.eventlog import MemoryEventLog
from workbench.store.scenarios import load_scenario

MAX_GAP_S = 0.050
"""The loop keeps ticking within this while the aids work (a 15 fps frame interval is 67 ms)."""
SLOW_DISK_S = 0.5
AID_EVENTS = (ev.LinkProposed, ev.LinkRescored, ev.AdviceGiven)


def _quantile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


@pytest.fixture()
def recordings(tmp_path: Path) -> Iterator[Path]:
    """The recordings on tmpfs when there is one: the ingest fsyncs every event on its loop, which on a loaded disk
    alone can stall it for tens of ms; that is the event log's price, not the aids' work measured here."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path / "rec"
        return
    folder = Path(tempfile.mkdtemp(prefix="wb-aids-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_loop_keeps_ticking_while_the_first_reports_with_photos_are_scored(
        recordings: Path, real_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = real_data / "photos" / "still_test1_outdoor_fire_smoke_f090.jpg"
    photo_bytes = photo.read_bytes()
    scenario = load_scenario(MULTI)
    windows: list[tuple[float, float, int]] = []  # (start, end, thread id) of every Automation.process
    real_process = Automation.process

    def timed_process(self: Automation, *args, **kwargs):  # noqa: ANN001, ANN202 - a spy around the real method
        start = time.monotonic()
        try:
            return real_process(self, *args, **kwargs)
        finally:
            windows.append((start, time.monotonic(), threading.get_ident()))

    monkeypatch.setattr(Automation, "process", timed_process)
    # Each photo read also waits 0.5 s, as on a slow or busy disk: on the loop that alone would stall it 0.5 s.
    real_read = Automation._read_photo

    def slow_read(report, path):  # noqa: ANN001, ANN202 - the real read after a disk's delay
        time.sleep(SLOW_DISK_S)
        return real_read(report, path)

    monkeypatch.setattr(Automation, "_read_photo", staticmethod(slow_read))

    async def main() -> tuple[list[ev.Event], list[float], int]:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=recordings))
        ticks: list[float] = []
        running = True

        async def heartbeat() -> None:
            while running:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.002)

        beat = asyncio.create_task(heartbeat())
        try:
            # The reports arrive as the ingest's handlers write them (the HTTP requests and the photo's storing are
            # the handlers' work, not under test here).
            ingest = handle.app[INGEST]
            sid = ingest.sessions.create(participant="P01", scenario_id="multi-caller",
                                         scenario_bytes=MULTI.read_bytes(), scenario_sha256="", session_id=None,
                                         seed=0, block_order=["multi"]).session_id
            display, _sha = ingest.sessions.get(sid).store_file("media/uploads/fire-display.jpg", photo_bytes)
            for n, spec in enumerate(scenario.calls[:3]):  # the first reports: two of the house fire, the shed fire
                call = ingest.create_call(sid, scenario_call_id=spec.id, block_id="multi", modality="photo",
                                          caller_label=spec.caller_label)
                for i, u in enumerate(spec.utterances):
                    ingest.sessions.append(sid, "runner", ev.CallerUtterance(i, u.text, u.at_s), call.call_id)
                    await asyncio.sleep(0.01)  # the next request
                ingest.sessions.append(sid, "ingest", ev.MediaPhotoReceived(
                    f"p{n}", display, display, "00" * 32, len(photo_bytes), "jpeg", 1280, 720, photo.name),
                    call.call_id)
            await handle.app[AIDS].settle(sid)
            async with aiohttp.ClientSession() as http:
                events = await _events(http, handle.url, sid)
        finally:
            running = False
            await beat
            await handle.stop()
        return events, ticks, threading.get_ident()

    events, ticks, loop_thread = asyncio.run(asyncio.wait_for(main(), 120))
    assert windows, "the aids never ran"
    assert all(tid != loop_thread for _s, _e, tid in windows), "the aids ran on the ingest's event loop"
    # The heartbeat's gaps while the aids were working.
    during = [b - a for a, b in zip(ticks, ticks[1:]) if any(a < e and b > s for s, e, _ in windows)]
    assert during, "no heartbeat while the aids worked"
    p90, p99 = _quantile(during, 0.9), _quantile(during, 0.99)
    print(f"aids: {len(windows)} batches, {sum(e - s for s, e, _ in windows) * 1000:.0f} ms on the worker thread "
          f"(longest {max(e - s for s, e, _ in windows) * 1000:.0f} ms); meanwhile {len(during)} heartbeats, gaps: "
          f"90th percentile {p90 * 1000:.1f} ms, 99th {p99 * 1000:.1f} ms, longest {max(during) * 1000:.1f} ms")
    # On this shared 2-core machine any thread is descheduled now and then (the worker holding the GIL, other
    # engineers' tests): 9 heartbeats in 10 come within 50 ms, and none waits as long as one photo read, which on the
    # loop would stall every heartbeat behind it.
    assert p90 < MAX_GAP_S, f"the ingest's loop stalled {p90 * 1000:.0f} ms (90th percentile) while the aids worked"
    assert max(during) < SLOW_DISK_S, f"the ingest's loop waited {max(during) * 1000:.0f} ms for the aids"

    # The same aid events, in the same order, as the synchronous listener writes for the same triggers; each after
    # the event that triggered it.
    written = [(e.type, e.call_id, e.data) for e in events if isinstance(e.data, AID_EVENTS)]
    assert {t for t, _c, _d in written} >= {"link.proposed", "advice.given"}
    replayed: list[ev.Event] = []

    def take(source: str, payload: ev.Payload, call_id: str | None, like: ev.Event) -> None:
        # The original times (the time gap between reports is part of the score), numbered afresh.
        replayed.append(ev.Event(like.schema, "again", len(replayed) + 1, like.t_mono_ns, like.t_wall, source,
                                 payload.TYPE, call_id, payload))
        sync.on_event(replayed[-1])

    sync = Automation(lambda sid, p, c: take("ingest", p, c, replayed[-1]), lambda sid: list(replayed),
                      lambda sid: recordings / events[0].session_id)
    for e in events:
        if not isinstance(e.data, AID_EVENTS):
            take(e.source, e.data, e.call_id, e)
    assert written == [(e.type, e.call_id, e.data) for e in replayed if isinstance(e.data, AID_EVENTS)]
    first_proposal = next(e for e in events if isinstance(e.data, ev.LinkProposed))
    created = {e.call_id: e.seq for e in events if isinstance(e.data, ev.CallCreated)}
    assert first_proposal.seq > max(created[first_proposal.call_id], created[first_proposal.data.other_call_id])


@pytest.mark.parametrize("linked_by_hand", [False, True])
def test_a_pair_the_dispatcher_linked_while_it_was_scored_is_not_proposed(tmp_path: Path, linked_by_hand: bool) -> None:
    """The proposal for two reports is computed on the worker; if the dispatcher links them by hand before it is
    written, it is dropped (never propose what the dispatcher settled), as the synchronous listener never did."""
    from workbench.ingest.automation import OffLoopAids

    (tmp_path / "scenario.toml").write_bytes(MULTI.read_bytes())
    log = MemoryEventLog("s")
    gate = threading.Event()

    class Held(Automation):
        def process(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - holds the worker until released
            assert gate.wait(30)
            return super().process(*args, **kwargs)

    async def main() -> None:
        aids: OffLoopAids

        def append(sid: str, payload: ev.Payload, call_id: str | None, source: str = "ingest") -> ev.Event:
            event = log.append(source, payload, call_id)
            aids.on_event(event)
            return event

        aids = OffLoopAids(Held(append, lambda sid: log.events(), lambda sid: tmp_path), append,
                           lambda sid, after: log.events(after))
        append("s", ev.CallCreated("fire-neighbour", "multi", "photo", "06-1"), "a")
        append("s", ev.CallCreated("fire-passerby", "multi", "photo", "06-2"), "b")  # the pair is scored...
        await asyncio.sleep(0.05)
        if linked_by_hand:  # ... while the dispatcher links the two by hand
            append("s", ev.LinkSet("a", "parent", "manual", ""), "b", source="console")
        gate.set()
        await aids.settle("s", timeout_s=30)
        await aids.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    proposed = [e for e in log.events() if isinstance(e.data, ev.LinkProposed)]
    assert len(proposed) == (0 if linked_by_hand else 1)
