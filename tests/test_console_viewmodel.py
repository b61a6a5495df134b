"""The console's view models, from sessions replayed out of an in-memory event log with a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workbench.console import viewmodel as vm
from workbench.domain import events as ev
from workbench.domain.session_state import SessionState, replay
from workbench.domain.taxonomy import INFORMATION_ITEMS, RSME_ANCHORS
from workbench.store.eventlog import MemoryEventLog
from workbench.store.scenarios import parse_scenario
from tests.conftest import REPO

S = 1_000_000_000
EPOCH = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """Monotonic ns starting at 1000 s; the wall clock is EPOCH plus the same elapsed time."""

    def __init__(self) -> None:
        self.mono = 1000 * S

    def monotonic_ns(self) -> int:
        return self.mono

    def now_utc(self) -> datetime:
        return EPOCH + timedelta(microseconds=(self.mono - 1000 * S) // 1000)

    def at(self, seconds: float) -> "FakeClock":
        """Set the clock to ``seconds`` after its start."""
        self.mono = 1000 * S + int(seconds * S)
        return self


def created(label: str, scenario_call_id: str = "", modality: str = "video") -> ev.CallCreated:
    return ev.CallCreated(scenario_call_id, "b1" if scenario_call_id else "", modality, label)


@pytest.fixture()
def log_clock() -> tuple[MemoryEventLog, FakeClock]:
    clock = FakeClock()
    log = MemoryEventLog("s1", clock)
    log.append("ingest", ev.SessionStarted("P01", "demo", "ab" * 32, 7, ["live-video"], "0.1.0"))
    return log, clock


def state_of(log: MemoryEventLog) -> SessionState:
    return replay(log.events())


def test_queue_orders_waiting_calls_oldest_first_with_whole_waiting_seconds(log_clock):
    log, clock = log_clock
    clock.at(1.0)
    log.append("ingest", created("06-1111"), "c1")
    clock.at(4.5)
    log.append("ingest", created("06-2222"), "c2")
    clock.at(2.0)  # a late-stamped third call still sorts by its arrival stamp
    log.append("ingest", created("06-3333"), "c3")
    state = state_of(log)

    rows = vm.queue_rows(state, now_ns=1000 * S + 10 * S)

    assert rows == [
        vm.QueueRow("c1", "06-1111", "video", "waiting", 9),
        vm.QueueRow("c3", "06-3333", "video", "waiting", 8),
        vm.QueueRow("c2", "06-2222", "video", "waiting", 5),
    ]
    assert vm.next_waiting(state).call_id == "c1"
    assert vm.current_screen(state) == vm.Screen("queue")


def test_answered_call_heads_the_queue_and_its_waiting_time_stops_at_the_answer(log_clock):
    log, clock = log_clock
    clock.at(0)
    log.append("ingest", created("06-1111"), "c1")
    log.append("ingest", created("06-2222"), "c2")
    clock.at(7.9)
    log.append("console", ev.CallAnswered("station-1"), "c2")
    state = state_of(log)

    rows = vm.queue_rows(state, now_ns=1000 * S + 30 * S)

    assert rows == [
        vm.QueueRow("c2", "06-2222", "video", "active", 7),
        vm.QueueRow("c1", "06-1111", "video", "waiting", 30),
    ]
    assert vm.current_screen(state) == vm.Screen("active", "c2")
    assert vm.next_waiting(state).call_id == "c1"


def test_waiting_time_is_never_negative():
    from workbench.domain.session_state import CallState

    call = CallState("c1", "", "", "video", "x", created_ns=5 * S)
    assert vm.waiting_s(call, now_ns=4 * S) == 0


def test_clock_offset_maps_the_console_wall_clock_onto_ingest_monotonic_time(log_clock):
    log, clock = log_clock
    clock.at(12.25)
    event = log.append("ingest", created("06-1111"), "c1")

    offset = vm.clock_offset_ns(event)

    wall_ns = int((EPOCH + timedelta(seconds=20)).timestamp()) * S
    assert vm.ingest_now_ns(wall_ns, offset) == 1000 * S + 20 * S


def test_transcript_lines_in_order_stamped_from_the_answer(log_clock):
    log, clock = log_clock
    clock.at(0)
    log.append("ingest", created("06-1111"), "c1")
    clock.at(3)
    log.append("console", ev.CallAnswered("station-1"), "c1")
    clock.at(3.2)
    log.append("runner", ev.CallerUtterance(0, "There is smoke coming from the house.", 0.0), "c1")
    clock.at(7.6)
    log.append("runner", ev.CallerUtterance(1, "Kerkstraat 12, Delft.", 4.0), "c1")
    call = state_of(log).calls["c1"]

    rows = vm.transcript_rows(call)

    assert rows == [
        vm.TranscriptRow(pytest.approx(0.2), "There is smoke coming from the house."),
        vm.TranscriptRow(pytest.approx(4.6), "Kerkstraat 12, Delft."),
    ]
    assert [r.render() for r in rows] == [
        "[+0 s] There is smoke coming from the house.",
        "[+5 s] Kerkstraat 12, Delft.",
    ]


def test_form_state_follows_the_intake_events_including_changes_and_untick(log_clock):
    log, clock = log_clock
    log.append("ingest", created("06-1111"), "c1")
    log.append("console", ev.CallAnswered("station-1"), "c1")
    log.append("console", ev.IntakeIncidentType("medical"), "c1")
    log.append("console", ev.IntakeIncidentType("fire"), "c1")
    log.append("console", ev.IntakeUrgency("nu"), "c1")
    log.append("console", ev.IntakeUrgency("spoed"), "c1")
    log.append("console", ev.IntakeLocation("Kerkstraat 12, Delft"), "c1")
    log.append("console", ev.IntakeItemChecked("location", True), "c1")
    log.append("console", ev.IntakeItemChecked("trapped", True), "c1")
    log.append("console", ev.IntakeItemChecked("trapped", False), "c1")
    log.append("console", ev.IntakeDisagreementFlag(True, "fire_smoke_size"), "c1")

    form = vm.form_state(state_of(log).calls["c1"])

    assert form == vm.FormState(
        incident_type="fire",
        urgency="spoed",
        location="Kerkstraat 12, Delft",
        items_checked=frozenset({"location"}),
        disagreement_flagged=True,
        disagreement_aspect="fire_smoke_size",
    )


def test_fresh_call_has_an_empty_form(log_clock):
    log, _ = log_clock
    log.append("ingest", created("06-1111"), "c1")
    assert vm.form_state(state_of(log).calls["c1"]) == vm.FormState(None, None, "", frozenset(), False, None)


def test_sync_payloads_post_only_what_the_widgets_changed_beyond_the_log(log_clock):
    log, _ = log_clock
    log.append("ingest", created("06-1111"), "c1")
    log.append("console", ev.IntakeUrgency("nu"), "c1")
    log.append("console", ev.IntakeItemChecked("injuries", True), "c1")
    call = state_of(log).calls["c1"]
    widgets = vm.FormState("fire", "nu", "Oostweg", frozenset({"location"}), True, "vehicle")

    assert vm.sync_payloads(call, widgets) == [
        ev.IntakeIncidentType("fire"),
        ev.IntakeLocation("Oostweg"),
        ev.IntakeItemChecked("injuries", False),
        ev.IntakeItemChecked("location", True),
        ev.IntakeDisagreementFlag(True, "vehicle"),
    ]
    assert vm.sync_payloads(call, vm.form_state(call)) == []


def test_close_payload_keeps_checklist_order_and_drops_the_aspect_when_not_flagged():
    form = vm.FormState("fire", "spoed", "Kerkstraat 12", frozenset({"fire_size", "location"}), False, "people")

    closed = vm.close_payload(form, ["location", "trapped", "fire_size", "caller_safe"], "smoke at the back")

    assert closed == ev.CallClosed("fire", "spoed", "Kerkstraat 12", ["location", "fire_size"], False, "",
                                   "smoke at the back")


def test_after_close_the_page_asks_for_the_rsme_and_after_rating_returns_to_the_queue(log_clock):
    log, clock = log_clock
    log.append("ingest", created("06-1111"), "c1")
    log.append("ingest", created("06-2222"), "c2")
    log.append("console", ev.CallAnswered("station-1"), "c1")
    form = vm.FormState("fire", "spoed", "Kerkstraat 12", frozenset({"location"}), True, "fire_smoke_size")
    log.append("console", vm.close_payload(form, ["location", "trapped"], ""), "c1")

    state = state_of(log)
    assert vm.current_screen(state) == vm.Screen("rsme", "c1")
    assert [r.status for r in vm.queue_rows(state, 0)] == ["closed", "waiting"]

    log.append("console", vm.rsme_payload(57), "c1")
    state = state_of(log)
    assert state.calls["c1"].rsme == 57.0
    assert vm.current_screen(state) == vm.Screen("queue")
    assert [r.call_id for r in vm.queue_rows(state, 0)] == ["c2"]


def test_rsme_payload_is_exact_and_validated():
    assert vm.rsme_payload(57) == ev.RatingRsme(57.0)
    assert vm.rsme_payload(150).value == 150.0
    with pytest.raises(ev.EventValidationError):
        vm.rsme_payload(151)


def test_rsme_scale_shows_every_anchor_at_its_position_and_the_marker():
    html = vm.rsme_scale_html(57)
    for anchor in RSME_ANCHORS:
        assert f">{anchor.label}<" in html
        assert f"bottom:{anchor.position / 150 * 100:.2f}%" in html
    assert 'class="rs-marker" style="bottom:38.00%"' in html
    assert "rs-marker" not in vm.rsme_scale_html(None).split("</style>")[1]
    assert "http" not in html  # nothing remote


def test_checklist_comes_from_the_scenario_for_scenario_calls_and_the_taxonomy_otherwise(log_clock):
    log, _ = log_clock
    scenario = parse_scenario((REPO / "experiments/demo/scenario.toml").read_bytes(), check_media=False)
    log.append("ingest", created("06-1234 5678", "house-fire"), "c1")
    log.append("ingest", created("ad hoc"), "c2")
    log.append("ingest", created("06-0000", "no-such-call"), "c3")
    state = state_of(log)

    assert vm.checklist_items(scenario, state.calls["c1"]) == [
        ("location", "Exact location / address"),
        ("trapped", "People trapped or inside"),
        ("fire_size", "Size of fire or smoke"),
        ("caller_safe", "Caller is safe"),
    ]
    assert vm.checklist_items(scenario, state.calls["c2"]) == list(INFORMATION_ITEMS.items())
    assert vm.checklist_items(scenario, state.calls["c3"]) == list(INFORMATION_ITEMS.items())
    assert vm.checklist_items(None, state.calls["c1"]) == list(INFORMATION_ITEMS.items())


def test_labels():
    assert vm.urgency_options() == ["spoed", "nu", "later"]
    assert [vm.urgency_label(u) for u in vm.urgency_options()] == [
        "spoed (urgent, prio 1)",
        "nu (now, prio 2)",
        "later (later, prio 3)",
    ]
    assert vm.incident_type_label("traffic_accident") == "Traffic accident"
    assert vm.aspect_label("fire_smoke_size") == "Fire or smoke size"


def test_photo_tiles_and_urls(log_clock):
    log, clock = log_clock
    clock.at(0)
    log.append("ingest", created("06-1111"), "c1")
    clock.at(1)
    photo = ev.MediaPhotoReceived("p1", "media/c1/p1.jpg", "media/c1/p1-display.jpg", "00" * 32, 1000, "JPEG",
                                  640, 480, "IMG_1.jpg")
    log.append("ingest", photo, "c1")
    clock.at(2)
    log.append("console", ev.CallAnswered("station-1"), "c1")
    clock.at(5.4)
    log.append("ingest", ev.MediaPhotoReceived("p2", "a", "b", "00" * 32, 1, "PNG", 480, 640, "x.png"), "c1")

    tiles = vm.photo_views(state_of(log).calls["c1"], "http://127.0.0.1:9000/")

    assert tiles == [
        vm.PhotoView("http://127.0.0.1:9000/api/calls/c1/photos/p1", "p1 (before answer)", 640, 480, "p1"),
        vm.PhotoView("http://127.0.0.1:9000/api/calls/c1/photos/p2", "p2 (+3 s)", 480, 640, "p2"),
    ]
    assert vm.viewer_url("http://h:1", "c 1") == "http://h:1/api/calls/c%201/viewer"


def test_media_status_line_tolerates_missing_fields():
    assert vm.media_status_line({"state": "connected", "video_codec": "VP8", "width": 640, "height": 480,
                                 "frames_received": 152}) == "connected · VP8 · 640x480 · 152 frames"
    assert vm.media_status_line({}) == "unknown"


def test_pick_session_takes_the_newest_live_one():
    rows = [
        {"session_id": "a", "ended": False},
        {"session_id": "b", "ended": False},
        {"session_id": "c", "ended": True},
    ]
    assert vm.pick_session(rows) == "b"
    assert vm.pick_session([{"session_id": "x", "ended": True}]) is None
    dated = [
        {"session_id": "new", "ended": False, "started_at": "2025-03-02T10:00:00+00:00"},
        {"session_id": "old", "ended": False, "started_at": "2025-03-01T10:00:00+00:00"},
    ]
    assert vm.pick_session(dated) == "new"


def test_only_news_is_posted_from_widget_callbacks(log_clock):
    log, _ = log_clock
    log.append("ingest", created("06-1111"), "c1")
    assert not vm.is_news(state_of(log).calls["c1"], ev.IntakeUrgency("nu"))  # not answered yet
    log.append("console", ev.CallAnswered("station-1"), "c1")
    log.append("console", ev.IntakeUrgency("nu"), "c1")
    log.append("console", ev.IntakeItemChecked("location", True), "c1")
    call = state_of(log).calls["c1"]

    assert [vm.is_news(call, p) for p in (
        ev.IntakeUrgency("nu"),
        ev.IntakeUrgency("spoed"),
        ev.IntakeIncidentType("fire"),
        ev.IntakeLocation(""),
        ev.IntakeItemChecked("location", True),
        ev.IntakeItemChecked("location", False),
        ev.IntakeItemChecked("injuries", False),
        ev.IntakeDisagreementFlag(False, ""),
        ev.IntakeDisagreementFlag(True, ""),
    )] == [False, True, True, False, False, True, False, False, True]

    log.append("console", ev.CallClosed("", "nu", "", ["location"], False, "", ""), "c1")
    assert not vm.is_news(state_of(log).calls["c1"], ev.IntakeUrgency("spoed"))  # closed: nothing more


def test_queue_status_text():
    assert vm.queue_status_text(vm.QueueRow("c1", "x", "video", "waiting", 12)) == "waiting 12 s"
    assert vm.queue_status_text(vm.QueueRow("c1", "x", "video", "active", 3)) == "active · answered after 3 s"


def test_widget_keys_carry_the_call_id():
    assert vm.widget_key("urgency", "c-1f") == "urgency-c-1f"
    assert vm.widget_key("item_location", "c2") == "item_location-c2"


def test_requested_snapshots_newest_first_with_quality_and_prompts_with_their_delivery(log_clock):
    log, clock = log_clock
    clock.at(0)
    log.append("ingest", created("06-3333"), "c1")
    log.append("console", ev.CallAnswered("station-1"), "c1")
    clock.at(3)
    log.append("ingest", ev.MediaSnapshot("media/c1/snapshot-0001.jpg", "00" * 32, 640, 480, 30, "periodic",
                                          120.0, 90.0, 1.0), "c1")
    log.append("ingest", ev.MediaSnapshot("media/c1/snapshot-0002.jpg", "00" * 32, 640, 480, 45, "request",
                                          42.4, 87.6, 3.04), "c1")
    log.append("ingest", ev.MediaSnapshot("media/c1/snapshot-0003.jpg", "00" * 32, 640, 480, 60, "request",
                                          210.5, 130.2, 0.0), "c1")
    clock.at(10)
    log.append("console", ev.DispatcherPrompt(1, "photo", ""), "c1")
    clock.at(12)
    log.append("console", ev.DispatcherPrompt(2, "switch_camera", ""), "c1")
    clock.at(12.5)
    log.append("ingest", ev.CallerPromptDelivered(1, 2500.0), "c1")
    log.append("ingest", ev.CallerPromptDelivered(1, 2600.0), "c1")  # a second delivery keeps the first time
    call = state_of(log).calls["c1"]

    # Only the dispatcher's own requests, not the periodic stills.
    assert vm.snapshot_views(call, "http://127.0.0.1:9000/") == [
        vm.SnapshotView("http://127.0.0.1:9000/api/calls/c1/snapshots/snapshot-0003.jpg",
                        "#2 · 640x480 · sharpness 210 · brightness 130 · motion 0.0"),
        vm.SnapshotView("http://127.0.0.1:9000/api/calls/c1/snapshots/snapshot-0002.jpg",
                        "#1 · 640x480 · sharpness 42 (blurred) · brightness 88 · motion 3.0"),
    ]
    assert call.prompts[0].delivered_ns == 1012 * S + S // 2
    assert vm.prompt_lines(call, 1020 * S) == [
        "Ask to switch camera · 8 s ago · not yet on the caller's screen",
        "Ask for a photo · 10 s ago · on the caller's screen",
    ]
