"""The ingest's JSON API and the caller link, against a real server on a free port (no WebRTC media here).

Every rejected request is checked three ways: the 4xx status, a message naming the problem, and a SHA-256 of every
file in the recordings tree that is identical before and after; /healthz must still answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from PIL import Image

from tests.conftest import REPO, free_port
from workbench.ingest.server import IngestHandle, start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings

DEMO_SCENARIO = (REPO / "experiments" / "demo" / "scenario.toml").read_text(encoding="utf-8")


class FakeClock:
    """The real clock plus an offset the test can advance (link expiry)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def monotonic_ns(self) -> int:
        return time.monotonic_ns() + self.offset_ns

    def now_utc(self) -> datetime:
        return datetime.now(timezone.utc)


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative path -> hex)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Ctx:
    """A running ingest and two HTTP clients (two 'browsers' with their own cookie jars)."""

    def __init__(self, handle: IngestHandle, root: Path, clock: FakeClock) -> None:
        self.handle, self.root, self.clock = handle, root, clock
        self.url = handle.url
        # unsafe=True: aiohttp's default jar ignores cookies from IP addresses such as 127.0.0.1.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.other = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def request(self, method: str, path: str, *, client: aiohttp.ClientSession | None = None, **kw: Any):
        url = path if path.startswith("http") else self.url + path
        async with (client or self.http).request(method, url, **kw) as resp:
            body = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            data = json.loads(body) if ctype.startswith("application/json") else body
            return resp.status, data, resp.headers

    async def rejected(
        self, expect_status: int, words: list[str], method: str, path: str, *, refused: tuple[str, str] | None = None,
        **kw: Any,
    ) -> str:
        """Send a request that must be refused; check status, message, unchanged tree, healthy server.

        ``refused=(reason, what)``: a refusal on a known caller link, which appends exactly one ``call.link_refused``
        event with the status, ``reason`` and ``what`` and changes nothing else."""
        before = tree_digest(self.root)
        logs = {p: p.read_bytes() for p in self.root.glob("*/events.jsonl")}
        status, data, _ = await self.request(method, path, **kw)
        assert status == expect_status, (status, data)
        assert isinstance(data, dict) and isinstance(data.get("error"), str), data
        for word in words:
            assert word.lower() in data["error"].lower(), (word, data["error"])
        after = tree_digest(self.root)
        if refused is not None:
            grown = [p for p in logs if p.read_bytes() != logs[p]]
            assert len(grown) == 1, "a refusal on a caller link appends one event to its session's log"
            added = grown[0].read_bytes()[len(logs[grown[0]]):].decode().splitlines()
            assert grown[0].read_bytes().startswith(logs[grown[0]]) and len(added) == 1
            event = json.loads(added[0])
            assert event["type"] == "call.link_refused" and event["source"] == "ingest", event
            assert (event["data"]["status"], event["data"]["reason"], event["data"]["path"]) == (
                expect_status, *refused), event
            key = grown[0].relative_to(self.root).as_posix()
            before, after = dict(before), dict(after)
            before.pop(key), after.pop(key)
        assert after == before, "a rejected request changed the recordings tree"
        status, health, _ = await self.request("GET", "/healthz")
        assert status == 200 and health["status"] == "ok"
        return data["error"]

    async def close(self) -> None:
        await self.http.close()
        await self.other.close()


def with_ingest(**settings_kw: Any) -> Callable[[Callable[[Ctx], Awaitable[None]]], Callable[[Path], None]]:
    """Run an async test body against a fresh ingest on a free port (recordings in ``tmp_path``)."""

    def decorate(body: Callable[[Ctx], Awaitable[None]]) -> Callable[[Path], None]:
        def test(tmp_path: Path) -> None:
            async def main() -> None:
                root = tmp_path / "recordings"
                port = free_port()
                settings = IngestSettings(port=port, recordings=root, **settings_kw)
                clock = FakeClock()
                handle = await start_ingest(settings, Recordings(root), clock=clock)
                ctx = Ctx(handle, root, clock)
                try:
                    await body(ctx)
                finally:
                    await ctx.close()
                    await handle.stop()

            asyncio.run(main())

        # Not functools.wraps: pytest would read the body's (ctx) signature through __wrapped__.
        test.__name__, test.__doc__ = body.__name__, body.__doc__
        return test

    return decorate


async def new_call(ctx: Ctx, **body: Any) -> dict[str, Any]:
    status, data, _ = await ctx.request("POST", "/api/calls", json=body)
    assert status == 201, data
    return data


def read_events(root: Path, session_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / session_id / "events.jsonl").read_text().splitlines()]


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# --- the happy paths -------------------------------------------------------------------------------------------------


@with_ingest()
async def test_healthz_sessions_and_events(ctx: Ctx) -> None:
    status, data, _ = await ctx.request("GET", "/healthz")
    assert status == 200 and data["status"] == "ok" and data["version"]

    status, data, _ = await ctx.request(
        "POST", "/api/sessions", json={"participant": "P07", "scenario_toml": DEMO_SCENARIO, "seed": 3}
    )
    assert status == 201, data
    sid = data["session_id"]
    assert sid.startswith("s-") and len(sid) == len("s-20250101-120000-abcd")
    header = json.loads((ctx.root / sid / "session.json").read_text())
    assert header["participant"] == "P07" and header["scenario_id"] == "demo" and header["seed"] == 3
    assert header["block_order"] == ["live-video"] and header["status"] == "exercise"
    scenario_copy = (ctx.root / sid / "scenario.toml").read_bytes()
    assert hashlib.sha256(scenario_copy).hexdigest() == header["scenario_sha256"]

    call = await new_call(ctx, session_id=sid, scenario_call_id="house-fire", block_id="live-video",
                          caller_label="06-1234 5678")
    assert call["session_id"] == sid and call["call_id"].startswith("c-")
    assert call["caller_url"].startswith(f"http://127.0.0.1:{ctx.handle.url.rsplit(':', 1)[1]}/c/")
    token = call["caller_url"].rsplit("/", 1)[1]
    assert len(token) >= 32

    status, state, headers = await ctx.request("GET", f"/api/calls/{call['call_id']}")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert state["state"] == "created" and state["connected"] is False and state["answered"] is False
    assert state["frames_received"] == 0 and state["photos"] == 0

    # The console answers the call through the API; the ingest assigns seq.
    answered = {"source": "console", "type": "call.answered", "call_id": call["call_id"], "data": {"station": "d1"}}
    status, data, _ = await ctx.request("POST", f"/api/sessions/{sid}/events", json=answered)
    assert status == 201, data
    assert data["event"]["seq"] == 3 and data["event"]["source"] == "console"
    status, state, _ = await ctx.request("GET", f"/api/calls/{call['call_id']}")
    assert state["answered"] is True

    status, data, _ = await ctx.request("GET", f"/api/sessions/{sid}/events?after=1")
    assert [e["type"] for e in data["events"]] == ["call.created", "call.answered"]
    assert data["events"][0]["data"]["scenario_call_id"] == "house-fire"

    status, data, _ = await ctx.request("POST", f"/api/sessions/{sid}/control", json={"action": "end"})
    assert status == 200 and data["event"]["data"]["reason"] == "completed"
    status, data, _ = await ctx.request("GET", "/api/sessions")
    row = next(s for s in data["sessions"] if s["session_id"] == sid)
    assert row == {"session_id": sid, "participant": "P07", "scenario_id": "demo", "last_seq": 4, "ended": True}
    await ctx.rejected(409, ["ended"], "POST", "/api/calls", json={"session_id": sid})
    await ctx.rejected(409, ["ended"], "POST", f"/api/sessions/{sid}/control", json={"action": "abort"})

    types = [e["type"] for e in read_events(ctx.root, sid)]
    assert types == ["session.started", "call.created", "call.answered", "session.ended"]


@with_ingest()
async def test_adhoc_call_link_binding_and_photo(ctx: Ctx) -> None:
    call = await new_call(ctx)
    sid, cid = call["session_id"], call["call_id"]
    assert sid.startswith("s-")
    second = await new_call(ctx, modality="photo")
    assert second["session_id"] == sid, "one ad-hoc session per server run"

    status, page, headers = await ctx.request("GET", call["caller_url"], headers={"User-Agent": "TestPhone/1"})
    assert status == 200 and b"RTCPeerConnection" not in page and b"caller.js" in page
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    status, _, _ = await ctx.request("GET", call["caller_url"])  # the same browser may come back
    assert status == 200
    status, page, _ = await ctx.request("GET", call["caller_url"], client=ctx.other)
    assert status == 409 and b"another device" in page

    events = read_events(ctx.root, sid)
    opened = [e for e in events if e["type"] == "call.link_opened"]
    assert len(opened) == 1 and opened[0]["data"]["user_agent"] == "TestPhone/1" and opened[0]["call_id"] == cid

    status, _, _ = await ctx.request("GET", f"/api/calls/{cid}/frame.jpg")
    assert status == 404

    png = png_bytes()
    form = aiohttp.FormData()
    form.add_field("photo", png, filename="scene.png", content_type="image/png")
    status, data, _ = await ctx.request("POST", call["caller_url"] + "/photos", data=form)
    assert status == 201, data
    assert data["photos"][0]["photo_id"] == "p1" and data["photos"][0]["width"] == 64
    manifest = json.loads((ctx.root / sid / "manifest.json").read_text())["files"]
    original = f"media/{cid}/photo-p1.png"
    assert manifest[original]["sha256"] == hashlib.sha256(png).hexdigest()
    assert manifest[original]["size"] == len(png)
    assert f"media/{cid}/photo-p1-display.jpg" in manifest
    received = [e for e in read_events(ctx.root, sid) if e["type"] == "media.photo_received"]
    assert received[0]["data"]["file_original"] == original
    assert received[0]["data"]["image_format"] == "PNG" and received[0]["data"]["client_filename"] == "scene.png"

    status, jpeg, headers = await ctx.request("GET", f"/api/calls/{cid}/photos/p1")
    assert status == 200 and jpeg[:2] == b"\xff\xd8" and headers["Access-Control-Allow-Origin"] == "*"
    status, state, _ = await ctx.request("GET", f"/api/calls/{cid}")
    assert state["photos"] == 1
    await ctx.rejected(404, ["photo"], "GET", f"/api/calls/{cid}/photos/p9")

    # Hang up: the call ends, and the link answers 410 from then on.
    status, data, _ = await ctx.request("POST", call["caller_url"] + "/hangup")
    assert status == 200 and data["state"] == "ended"
    ended = [e for e in read_events(ctx.root, sid) if e["type"] == "call.ended"]
    assert ended[0]["data"]["reason"] == "caller_hung_up"
    status, page, _ = await ctx.request("GET", call["caller_url"])
    assert status == 410 and b"ended" in page
    await ctx.rejected(410, ["ended"], "POST", call["caller_url"] + "/offer", json={"sdp": "v=0", "type": "offer"},
                       refused=("ended", "offer"))
    refusals = [e["data"] for e in read_events(ctx.root, sid) if e["type"] == "call.link_refused"]
    assert [(r["status"], r["reason"], r["path"]) for r in refusals] == [
        (409, "other_browser", "page"), (410, "ended", "page"), (410, "ended", "offer")]


# --- bad input ---------------------------------------------------------------------------------------------------------

MINIMAL_OFFER_NO_MEDIA = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@with_ingest()
async def test_malformed_offers_are_refused(ctx: Ctx) -> None:
    call = await new_call(ctx)
    offer_url = call["caller_url"] + "/offer"
    await ctx.rejected(409, ["open the caller link"], "POST", offer_url, json={"sdp": "v=0", "type": "offer"},
                       refused=("other_browser", "offer"))
    status, _, _ = await ctx.request("GET", call["caller_url"])
    assert status == 200
    await ctx.rejected(409, ["not bound"], "POST", offer_url, client=ctx.other, json={"sdp": "v=0", "type": "offer"},
                       refused=("other_browser", "offer"))
    await ctx.rejected(400, ["not json"], "POST", offer_url, data=b"sdp=hello")
    await ctx.rejected(400, ['"type" must be "offer"'], "POST", offer_url, json={"sdp": "v=0\r\n", "type": "answer"})
    await ctx.rejected(400, ['"sdp"'], "POST", offer_url, json={"type": "offer"})
    await ctx.rejected(400, ["not an sdp"], "POST", offer_url, json={"sdp": "hello world", "type": "offer"})
    await ctx.rejected(400, ["no audio or video"], "POST", offer_url, json={"sdp": MINIMAL_OFFER_NO_MEDIA, "type": "offer"})
    broken = MINIMAL_OFFER_NO_MEDIA + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
    await ctx.rejected(400, ["could not be negotiated"], "POST", offer_url, json={"sdp": broken, "type": "offer"})
    status, state, _ = await ctx.request("GET", f"/api/calls/{call['call_id']}")
    assert state["state"] == "created" and state["connected"] is False


@with_ingest()
async def test_unknown_expired_and_foreign_links(ctx: Ctx) -> None:
    status, page, _ = await ctx.request("GET", "/c/not-a-token")
    assert status == 404 and b"not known" in page
    await ctx.rejected(404, ["not known"], "POST", "/c/not-a-token/offer", json={"sdp": "v=0", "type": "offer"})
    await ctx.rejected(404, ["unknown call"], "GET", "/api/calls/c-00000000")

    call = await new_call(ctx)
    status, _, _ = await ctx.request("GET", call["caller_url"])
    assert status == 200
    form = aiohttp.FormData()
    form.add_field("photo", png_bytes(), filename="a.png", content_type="image/png")
    await ctx.rejected(409, ["not bound"], "POST", call["caller_url"] + "/photos", client=ctx.other, data=form,
                       refused=("other_browser", "photos"))

    ctx.clock.offset_ns += int(5 * 3600 * 1e9)  # past the default 4 h link lifetime
    status, page, _ = await ctx.request("GET", call["caller_url"])
    assert status == 410 and b"expired" in page
    await ctx.rejected(410, ["expired"], "POST", call["caller_url"] + "/offer", json={"sdp": "v=0", "type": "offer"},
                       refused=("expired", "offer"))
    refusals = [e["data"] for e in read_events(ctx.root, call["session_id"]) if e["type"] == "call.link_refused"]
    assert [(r["status"], r["reason"], r["path"]) for r in refusals][-2:] == [(410, "expired", "page"),
                                                                              (410, "expired", "offer")]
    assert "photo" not in " ".join(p.name for p in ctx.root.rglob("*")), "the refused photo was not stored"


@with_ingest(upload_limit_bytes=20_000)
async def test_bad_uploads_are_refused(ctx: Ctx) -> None:
    call = await new_call(ctx)
    await ctx.request("GET", call["caller_url"])
    photos_url = call["caller_url"] + "/photos"

    form = aiohttp.FormData()
    form.add_field("photo", b"%PDF-1.4 this is not an image\n" * 20, filename="report.pdf", content_type="image/jpeg")
    error = await ctx.rejected(415, ["report.pdf"], "POST", photos_url, data=form)
    assert "image" in error.lower()

    # One good and one bad part: nothing is stored.
    form = aiohttp.FormData()
    form.add_field("photo", png_bytes(), filename="ok.png", content_type="image/png")
    form.add_field("photo", b"GIF89a-broken", filename="bad.gif", content_type="image/gif")
    await ctx.rejected(415, ["bad.gif"], "POST", photos_url, data=form)

    big = Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192))
    buf = io.BytesIO()
    big.save(buf, format="PNG", compress_level=0)
    assert len(buf.getvalue()) > 20_000
    form = aiohttp.FormData()
    form.add_field("photo", buf.getvalue(), filename="big.png", content_type="image/png")
    await ctx.rejected(413, ["too large", "20000 bytes"], "POST", photos_url, data=form)

    await ctx.rejected(400, ['"photo"'], "POST", photos_url, data=aiohttp.FormData({"other": "x"}))
    await ctx.rejected(400, ["multipart"], "POST", photos_url, json={"photo": "x"})
    status, state, _ = await ctx.request("GET", f"/api/calls/{call['call_id']}")
    assert state["photos"] == 0


@with_ingest()
async def test_bad_sessions_and_events_are_refused(ctx: Ctx) -> None:
    await ctx.rejected(400, ["participant"], "POST", "/api/sessions", json={"scenario_toml": DEMO_SCENARIO})
    await ctx.rejected(400, ["not valid json"], "POST", "/api/sessions", data=b"{participant")
    await ctx.rejected(400, ["not valid toml"], "POST", "/api/sessions",
                       json={"participant": "P1", "scenario_toml": "id = [unclosed"})
    bad_truth = DEMO_SCENARIO.replace('urgency = "spoed"', 'urgency = "asap"')
    await ctx.rejected(400, ["scenario is not valid", "urgency"], "POST", "/api/sessions",
                       json={"participant": "P1", "scenario_toml": bad_truth})
    await ctx.rejected(400, ["block_order", "live-video"], "POST", "/api/sessions",
                       json={"participant": "P1", "scenario_toml": DEMO_SCENARIO, "block_order": ["nope"]})
    await ctx.rejected(400, ["session_id"], "POST", "/api/sessions", json={"participant": "P1", "session_id": "../x"})
    await ctx.rejected(400, ["seed"], "POST", "/api/sessions", json={"participant": "P1", "seed": "7"})

    status, data, _ = await ctx.request("POST", "/api/sessions", json={"participant": "P1", "session_id": "s-fixed"})
    assert status == 201 and data["session_id"] == "s-fixed"
    await ctx.rejected(409, ["exists already"], "POST", "/api/sessions", json={"participant": "P2", "session_id": "s-fixed"})

    call = await new_call(ctx, session_id="s-fixed")
    url = "/api/sessions/s-fixed/events"
    base = {"source": "console", "type": "call.answered", "call_id": call["call_id"], "data": {"station": "d1"}}
    await ctx.rejected(400, ["unknown event type", "'call.teleported'"], "POST", url, json={**base, "type": "call.teleported"})
    await ctx.rejected(400, ["source", "'ingest'"], "POST", url, json={**base, "source": "ingest"})
    await ctx.rejected(400, ["source 'runner' may not emit"], "POST", url, json={**base, "source": "runner"})
    await ctx.rejected(400, ["missing field", "station"], "POST", url, json={**base, "data": {}})
    await ctx.rejected(400, ["call_id is required"], "POST", url, json={**base, "call_id": None})
    await ctx.rejected(400, ["rsme"], "POST", url,
                       json={**base, "type": "rating.rsme", "data": {"value": 151}})
    await ctx.rejected(404, ["unknown session"], "POST", "/api/sessions/s-nope/events", json=base)
    await ctx.rejected(404, ["unknown session"], "GET", "/api/sessions/s-nope/events")
    await ctx.rejected(400, ["after"], "GET", "/api/sessions/s-fixed/events?after=x")
    await ctx.rejected(400, ["action"], "POST", "/api/sessions/s-fixed/control", json={"action": "explode"})
    await ctx.rejected(400, ["modality"], "POST", "/api/calls", json={"session_id": "s-fixed", "modality": "smell"})
    await ctx.rejected(404, ["unknown session"], "POST", "/api/calls", json={"session_id": "s-nope"})
    await ctx.rejected(404, ["no such endpoint"], "GET", "/api/nothing-here")


@with_ingest()
async def test_stop_ends_calls_and_adhoc_session(ctx: Ctx) -> None:
    call = await new_call(ctx)
    await ctx.handle.stop()
    types = [(e["type"], e["data"].get("reason")) for e in read_events(ctx.root, call["session_id"])]
    assert types[-2:] == [("call.ended", "server_stopped"), ("session.ended", "server_stopped")]


# --- the caller page's own events, the QR code, photo metadata (issue 3) ---------------------------------------------


@with_ingest()
async def test_caller_page_events_are_whitelisted_and_bound(ctx: Ctx) -> None:
    call = await new_call(ctx)
    sid, cid = call["session_id"], call["call_id"]
    url = call["caller_url"] + "/events"
    permission = {"type": "caller.permission", "data": {"permission": "camera_microphone", "outcome": "denied",
                                                        "error_name": "NotAllowedError", "ms_since_page_load": 812.5}}
    await ctx.rejected(409, ["open the caller link"], "POST", url, json=permission, refused=("other_browser", "events"))
    status, _, _ = await ctx.request("GET", call["caller_url"])
    assert status == 200
    status, data, _ = await ctx.request("POST", url, json=permission)
    assert status == 201, data
    geo = {"type": "caller.geolocation",
           "data": {"latitude": 52.0907, "longitude": 5.1214, "accuracy_m": 35.0, "age_ms": 120.0}}
    status, data, _ = await ctx.request("POST", url, json=geo)
    assert status == 201, data
    await ctx.rejected(409, ["not bound"], "POST", url, client=ctx.other, json=geo, refused=("other_browser", "events"))
    # Only the page's own types, only valid data: the page cannot forge ingest or console events.
    await ctx.rejected(400, ["must be one of", "caller.permission"], "POST", url,
                       json={"type": "call.answered", "data": {"station": "x"}})
    await ctx.rejected(400, ["must be one of"], "POST", url, json={"type": "media.photo_received", "data": {}})
    await ctx.rejected(400, ["out of range"], "POST", url,
                       json={**geo, "data": {**geo["data"], "latitude": 123.0}})
    await ctx.rejected(400, ["outcome"], "POST", url,
                       json={**permission, "data": {**permission["data"], "outcome": "maybe"}})
    await ctx.rejected(400, ["missing field"], "POST", url, json={"type": "caller.camera_switched", "data": {}})
    await ctx.rejected(400, ["json"], "POST", url, data=b"not json")

    events = [e for e in read_events(ctx.root, sid) if e["source"] == "caller"]
    assert [(e["type"], e["call_id"]) for e in events] == [("caller.permission", cid), ("caller.geolocation", cid)]
    assert events[0]["data"] == permission["data"] and events[1]["data"]["accuracy_m"] == 35.0

    status, data, _ = await ctx.request("POST", call["caller_url"] + "/hangup")
    assert status == 200
    await ctx.rejected(410, ["ended"], "POST", url, json=geo, refused=("ended", "events"))


@with_ingest(public_url="https://lab.example:8443")
async def test_qr_code_of_the_caller_link(ctx: Ctx) -> None:
    import cv2
    import numpy as np
    import segno

    call = await new_call(ctx)
    assert call["caller_url"].startswith("https://lab.example:8443/c/")
    status, svg, headers = await ctx.request("GET", f"/api/calls/{call['call_id']}/qr.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert svg.startswith(b"<svg") and b"Caller link" in svg
    # The symbol encodes the link: rebuild the module matrix segno drew and decode it with OpenCV's QR reader.
    matrix = np.array([list(row) for row in segno.make(call["caller_url"], error="m", micro=False).matrix], bool)
    image = np.pad(np.where(matrix, 0, 255).astype(np.uint8), 4, constant_values=255)
    image = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert text == call["caller_url"]
    from workbench.ingest.qr import qr_svg

    assert svg.decode() == qr_svg(call["caller_url"]), "the endpoint serves exactly that symbol"
    await ctx.rejected(404, ["unknown call"], "GET", "/api/calls/c-00000000/qr.svg")
    link = call["caller_url"].removeprefix("https://lab.example:8443")  # the public URL is for phones, not here
    await ctx.request("GET", link)
    await ctx.request("POST", link + "/hangup")
    await ctx.rejected(410, ["ended"], "GET", f"/api/calls/{call['call_id']}/qr.svg")


@with_ingest()
async def test_photo_gps_and_capture_time_are_recorded(ctx: Ctx) -> None:
    from tests.conftest import REAL_DATA

    photos = REAL_DATA / "photos"
    files = ["jpeg_gps_nikon_coolpix_p6000_DSCN0010.jpg", "heif_hmd_nokia8.3_5g_hdr_gps.heif",
             "jpeg_progressive_nikon_d300_empty_gps_ifd.jpeg", "still_test1_outdoor_fire_smoke_f000.jpg"]
    if not all((photos / f).is_file() for f in files):
        pytest.skip("real photos not found beside the clone")
    call = await new_call(ctx)
    await ctx.request("GET", call["caller_url"])
    form = aiohttp.FormData()
    for name in files:  # several at once, as a gallery pick sends them
        form.add_field("photo", (photos / name).read_bytes(), filename=name, content_type="image/jpeg")
    status, data, _ = await ctx.request("POST", call["caller_url"] + "/photos", data=form)
    assert status == 201, data
    events = read_events(ctx.root, call["session_id"])
    meta = {e["data"]["photo_id"]: e["data"] for e in events if e["type"] == "media.photo_metadata"}
    types = [e["type"] for e in events]
    assert types.index("media.photo_metadata") == types.index("media.photo_received") + 1
    # Expected values: SOURCES.md of the real photos (GPS 43.4674, 11.8851 and 40.6630, -3.7637, alt 940 m).
    assert meta["p1"]["has_gps"] and meta["p1"]["latitude"] == pytest.approx(43.4674, abs=1e-4)
    assert meta["p1"]["longitude"] == pytest.approx(11.8851, abs=1e-4) and meta["p1"]["taken_at"] == "2008-10-22T16:28:39"
    assert meta["p2"]["has_gps"] and meta["p2"]["latitude"] == pytest.approx(40.6630, abs=1e-4)
    assert meta["p2"]["longitude"] == pytest.approx(-3.7637, abs=1e-4)
    assert meta["p2"]["altitude_m"] == pytest.approx(940, abs=1) and meta["p2"]["taken_at"].startswith("2022-01-12T")
    assert not meta["p3"]["has_gps"] and meta["p3"]["latitude"] == 0.0, "a GPS block without a position is none"
    assert meta["p3"]["taken_at"] == "2012-07-14T16:30:12"
    assert meta["p4"] == {"photo_id": "p4", "has_gps": False, "latitude": 0.0, "longitude": 0.0, "altitude_m": 0.0,
                          "taken_at": ""}


@with_ingest(ice_mode="stun", stun_urls=("stun:stun.lab.example:3478",), turn_url="turn:turn.lab.example:3478",
             turn_user="lab", turn_password="secret")
async def test_caller_page_gets_the_configured_ice_servers_only(ctx: Ctx) -> None:
    call = await new_call(ctx)
    status, page, _ = await ctx.request("GET", call["caller_url"])
    assert status == 200
    config = json.loads(page.decode().split("window.CALLER_CONFIG = ", 1)[1].split(";</script>", 1)[0])
    assert config["iceServers"] == [
        {"urls": ["stun:stun.lab.example:3478"]},
        {"urls": ["turn:turn.lab.example:3478"], "username": "lab", "credential": "secret"},
    ]
    assert config["eventsUrl"] == f"/c/{call['caller_url'].rsplit('/', 1)[1]}/events"


@with_ingest(ice_mode="lan")
async def test_caller_page_in_lan_mode_has_no_ice_server(ctx: Ctx) -> None:
    call = await new_call(ctx)
    status, page, _ = await ctx.request("GET", call["caller_url"])
    config = json.loads(page.decode().split("window.CALLER_CONFIG = ", 1)[1].split(";</script>", 1)[0])
    assert status == 200 and config["iceServers"] == [], "no public STUN server slipped in"


def test_stun_mode_without_servers_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="never falls back to a public STUN server"):
        IngestSettings(ice_mode="stun")
    with pytest.raises(ValueError, match="stun: or stuns: URL"):
        IngestSettings(ice_mode="stun", stun_urls=("stun.l.example:3478",))
    with pytest.raises(ValueError, match="turn: or turns: URL"):
        IngestSettings(ice_mode="stun", turn_url="http://turn.example")
    assert IngestSettings(ice_mode="stun", turn_url="turns:turn.example:5349").turn_url
