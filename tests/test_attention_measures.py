"""Photo dwell time and the share of focus per panel, proven with literal values: hand-made sessions written through
the store code with a fake clock, so every dwell time, every share and every statistic below is computed by hand
(in the comment beside it), not taken from our own output.

Design (participant k = 1, 2, 3; one session each; calls answered, worked and closed one at a time):
- block b-audio (audio): a-1 (congruent) and a-2 (incongruent), each 20 s: focus on the transcript 0-10 s, on the
  form 10-20 s; no photo.
- block b-photo (photo): p-1 (congruent), 20 s: focus transcript 0-5 s, photos 5 to 5 + 4k s, form until 20 s;
  one photo view of 4 + k s (opened at 5 s, closed). p-2 (incongruent), 30 s: focus transcript 0-6 s, photos 6 to
  6 + 6k s, form until 30 s; two views: 2k s (opened at 1 s, closed) and 10 s (opened at 20 s, ended by the close).

Critical values: t(0.975, df 2) = 4.302653 (df 2 has the closed form t_q = (2q - 1) * sqrt(2 / (1 - (2q - 1)^2)),
q = 0.975: 0.95 * sqrt(2 / 0.0975) = 4.302653); two-sided p of t with df 2 = 1 - t / sqrt(t^2 + 2).
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analysis.run import analyze
from workbench.domain import events as ev
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

SCENARIO = b"""
id = "attention"
title = "Audio and photo blocks for dwell time and focus shares"

[[blocks]]
id = "b-audio"
modality = "audio"
calls = ["a-1", "a-2"]

[[blocks]]
id = "b-photo"
modality = "photo"
calls = ["p-1", "p-2"]

[[calls]]
id = "a-1"
arrival_s = 0
[calls.truth]
incident_type = "theft"
urgency = "nu"
required_items = ["location"]
congruence = { people = true }

[[calls]]
id = "a-2"
arrival_s = 0
[calls.truth]
incident_type = "medical"
urgency = "spoed"
required_items = ["location"]
congruence = { people = false }

[[calls]]
id = "p-1"
arrival_s = 0
media.photos = [{ file = "photos/bike.jpg", at_s = 1 }]
[calls.truth]
incident_type = "theft"
urgency = "nu"
required_items = ["location"]
congruence = { people = true }

[[calls]]
id = "p-2"
arrival_s = 0
media.photos = [{ file = "photos/injury.jpg", at_s = 1 }]
[calls.truth]
incident_type = "medical"
urgency = "spoed"
required_items = ["location"]
congruence = { people = false }
"""


class Clock:
    """Monotonic ns set by the test (absolute seconds since the session start, plus an arbitrary origin)."""

    def __init__(self) -> None:
        self.ns = 5_000_000_000

    def at(self, seconds: float) -> None:
        self.ns = 5_000_000_000 + round(seconds * 1_000_000_000)

    def monotonic_ns(self) -> int:
        return self.ns

    def now_utc(self) -> datetime:
        return datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc) + timedelta(microseconds=self.ns // 1000)


def _session(root: Path, k: int) -> None:
    participant, session_id = f"P{k}", f"s{k}"
    clock = Clock()
    order = ["b-audio", "b-photo"]
    header = SessionHeader(session_id=session_id, participant=participant, scenario_id="attention",
                           scenario_sha256=sha256_hex(SCENARIO), block_order=order, seed=1,
                           software_version="0.1.0", started_at="2025-03-01T09:00:00+00:00")
    folder = Recordings(root, clock=clock).create_session(header, scenario_bytes=SCENARIO)
    log = folder.event_log()

    def put(t: float, source: str, payload: ev.Payload, call_id: str | None = None) -> None:
        clock.at(t)
        log.append(source, payload, call_id=call_id)

    def focus(t: float, call_id: str, panel: str) -> None:
        # browser_ms on the ingest's monotonic clock (ms), as the console estimates it; logged at that moment.
        put(t, "console", ev.ConsoleFocus(panel, "pointer", (5_000_000_000 + round(t * 1e9)) / 1e6), call_id)

    put(0, "ingest", ev.SessionStarted(participant, "attention", sha256_hex(SCENARIO), 1, order, "0.1.0"))
    t = 1.0
    n = 0
    for position, (block_id, modality, calls) in enumerate((("b-audio", "audio", ("a-1", "a-2")),
                                                            ("b-photo", "photo", ("p-1", "p-2")))):
        put(t, "runner", ev.BlockStarted(block_id, modality, position))
        for scenario_call in calls:
            n += 1
            call_id = f"{session_id}-c{n}"
            put(t + 0.5, "ingest", ev.CallCreated(scenario_call, block_id, modality, "06"), call_id)
            answer = t + 1.0
            put(answer, "console", ev.CallAnswered("st1"), call_id)
            if scenario_call.startswith("a-"):
                length = 20.0
                focus(answer, call_id, "transcript")
                focus(answer + 10, call_id, "form")
            elif scenario_call == "p-1":
                length = 20.0
                focus(answer, call_id, "transcript")
                put(answer + 5, "console", ev.PhotoOpened("p1"), call_id)
                focus(answer + 5, call_id, "photos")
                put(answer + 6, "console", ev.PhotoEnlarged("p1", True), call_id)
                put(answer + 5 + 4 + k, "console", ev.PhotoClosed("p1"), call_id)
                focus(answer + 5 + 4 * k, call_id, "form")
            else:
                length = 30.0
                focus(answer, call_id, "transcript")
                put(answer + 1, "console", ev.PhotoOpened("p1"), call_id)
                put(answer + 1 + 2 * k, "console", ev.PhotoClosed("p1"), call_id)
                focus(answer + 6, call_id, "photos")
                focus(answer + 6 + 6 * k, call_id, "form")
                put(answer + 20, "console", ev.PhotoOpened("p1"), call_id)
            truth = {"a-1": ("theft", "nu"), "a-2": ("medical", "spoed"), "p-1": ("theft", "nu"),
                     "p-2": ("medical", "spoed")}[scenario_call]
            put(answer + length, "console", ev.CallClosed(truth[0], truth[1], "Dorpsstraat 1", ["location"], False,
                                                          "", ""), call_id)
            put(answer + length + 2, "console", ev.RatingRsme(40.0), call_id)
            t = answer + length + 3
        put(t, "runner", ev.BlockEnded(block_id))
        t += 1
    put(t, "runner", ev.SessionEnded("completed"))
    log.close()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("attention")
    for k in (1, 2, 3):
        _session(root / "rec", k)
    result = analyze(root / "rec", root / "out", workers=1)
    return root / "out", result


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_trials_carry_the_hand_computed_dwell_times_and_shares(analysed) -> None:
    out, result = analysed
    assert result.sessions_with_problems == {}
    trials = {(r["participant"], r["scenario_call_id"]): r for r in _rows(out / "trials.csv")}
    for k in (1, 2, 3):
        p1, p2, a1 = trials[(f"P{k}", "p-1")], trials[(f"P{k}", "p-2")], trials[(f"P{k}", "a-1")]
        assert float(p1["photo_dwell_s"]) == 4 + k  # one view, opened at 5 s and closed at 9 + k s
        assert float(p2["photo_dwell_s"]) == 2 * k + 10  # 2k s (closed) + 10 s (20 s to the close at 30 s)
        assert a1["photo_dwell_s"] == ""  # no photo opened: empty, not 0
        # p-1 (20 s): transcript 5 s = 0.25, photos 4k s = 0.2k, form 15 - 4k s.
        assert (float(p1["focus_transcript_share"]), float(p1["focus_photos_share"]),
                float(p1["focus_form_share"]), float(p1["focus_live_view_share"])) == pytest.approx(
            (0.25, 0.2 * k, (15 - 4 * k) / 20, 0.0))
        # p-2 (30 s): transcript 6 s = 0.2, photos 6k s = 0.2k, form 24 - 6k s.
        assert (float(p2["focus_transcript_share"]), float(p2["focus_photos_share"]),
                float(p2["focus_form_share"])) == pytest.approx((0.2, 0.2 * k, (24 - 6 * k) / 30))
        # a-1 (20 s): transcript 10 s, form 10 s; photos 0 (there was focus time, none on the photos panel).
        assert (float(a1["focus_transcript_share"]), float(a1["focus_form_share"]),
                float(a1["focus_photos_share"])) == (0.5, 0.5, 0.0)
    views = _rows(out / "media_views.csv")
    assert [(v["ended_by"], v["enlarged"]) for v in views if v["participant"] == "P2"] == [
        ("photo.closed", "True"), ("photo.closed", "False"), ("call.closed", "False")]


def _summary(out: Path) -> dict[tuple[str, str, str, str], dict[str, str]]:
    return {(r["measure"], r["contrast"], r["level"], r["method"]): r for r in _rows(out / "summary.csv")}


def test_dwell_time_incongruent_vs_congruent(analysed) -> None:
    out, _ = analysed
    s = _summary(out)
    t = s[("photo_dwell_s", "congruence", "incongruent", "paired_t")]
    # Differences incongruent - congruent per participant: (2k + 10) - (4 + k) = 6 + k = 7, 8, 9.
    # Mean 8, sd 1, se 1/sqrt(3) = 0.577350, t = 8 sqrt(3) = 13.856406 (df 2); p = 1 - t/sqrt(t^2 + 2) =
    # 1 - 13.856406/13.928388 = 0.005168; CI 8 -+ 4.302653 * 0.577350 = 5.515862 .. 10.484138;
    # d_z = 8 / 1 = 8.
    assert (t["n_participants"], t["n_obs"], t["unit"]) == ("3", "6", "s")
    assert float(t["estimate"]) == pytest.approx(8.0)
    assert float(t["statistic"]) == pytest.approx(13.856406, abs=1e-6)
    assert float(t["p"]) == pytest.approx(0.005168, abs=1e-6)
    assert (float(t["ci_low"]), float(t["ci_high"])) == (pytest.approx(5.515862, abs=1e-6),
                                                         pytest.approx(10.484138, abs=1e-6))
    assert float(t["effect_size"]) == pytest.approx(8.0)
    w = s[("photo_dwell_s", "congruence", "incongruent", "wilcoxon")]
    # Three positive differences: W = 0; exact two-sided p = 2 * (1/2^3) = 0.25; median difference 8.
    assert (float(w["statistic"]), float(w["p"]), float(w["estimate"])) == (0.0, 0.25, 8.0)
    m = s[("photo_dwell_s", "congruence", "incongruent", "mixedlm")]
    # Balanced and complete (every participant has each call once): the GLS fixed effect equals the difference of
    # the condition means whatever the variance components: mean(12, 14, 16) - mean(5, 6, 7) = 14 - 6 = 8.
    assert float(m["estimate"]) == pytest.approx(8.0, abs=1e-6)
    assert (m["n_participants"], m["n_obs"]) == ("3", "6")
    # No photo in the audio block: no dwell time to compare with (no modality rows).
    assert not [key for key in s if key[0] == "photo_dwell_s" and key[1] == "modality"]


def test_focus_shares_photo_vs_audio(analysed) -> None:
    out, _ = analysed
    s = _summary(out)
    t = s[("focus_photos_share", "modality", "photo", "paired_t")]
    # Participant means: photo (0.2k + 0.2k) / 2 = 0.2k, audio 0 -> differences 0.2, 0.4, 0.6.
    # Mean 0.4, sd 0.2, se 0.2/sqrt(3) = 0.115470, t = 2 sqrt(3) = 3.464102 (df 2); p = 1 - 3.464102/sqrt(14) =
    # 1 - 3.464102/3.741657 = 0.074180; CI 0.4 -+ 4.302653 * 0.115470 = -0.096828 .. 0.896828.
    assert (t["n_participants"], t["n_obs"], t["unit"]) == ("3", "12", "proportion 0-1")
    assert float(t["estimate"]) == pytest.approx(0.4)
    assert float(t["statistic"]) == pytest.approx(3.464102, abs=1e-6)
    assert float(t["p"]) == pytest.approx(0.074180, abs=1e-6)
    assert (float(t["ci_low"]), float(t["ci_high"])) == (pytest.approx(-0.096828, abs=1e-6),
                                                         pytest.approx(0.896828, abs=1e-6))
    w = s[("focus_photos_share", "modality", "photo", "wilcoxon")]
    assert (float(w["statistic"]), float(w["p"])) == (0.0, 0.25)  # three positive differences, as above
    m = s[("focus_photos_share", "modality", "photo", "mixedlm")]
    # Balanced, complete: the fixed effect is the difference of means, mean(0.2k) over k - 0 = 0.4.
    assert float(m["estimate"]) == pytest.approx(0.4, abs=1e-6)
    tr = s[("focus_transcript_share", "modality", "photo", "paired_t")]
    # Transcript: photo (0.25 + 0.2) / 2 = 0.225, audio 0.5, for everyone: every difference is -0.275, so t and d_z
    # are undefined and the row says why.
    assert float(tr["estimate"]) == pytest.approx(-0.275)
    assert tr["statistic"] == "" and "all paired differences are equal" in tr["note"]
    form = s[("focus_form_share", "modality", "photo", "paired_t")]
    # Form: photo ((15 - 4k)/20 + (24 - 6k)/30) / 2 = 0.575, 0.375, 0.175; audio 0.5 -> 0.075, -0.125, -0.325.
    # Mean -0.125, sd 0.2, t = -0.125 / 0.115470 = -1.082532.
    assert float(form["estimate"]) == pytest.approx(-0.125)
    assert float(form["statistic"]) == pytest.approx(-1.082532, abs=1e-6)
    # Live view: 0 in both blocks (no video block): every difference 0.
    live = s[("focus_live_view_share", "modality", "photo", "paired_t")]
    assert float(live["estimate"]) == 0.0 and "all paired differences are equal" in live["note"]
    assert math.isclose(float(s[("focus_photos_share", "congruence", "incongruent", "paired_t")]["estimate"]), 0.0,
                        abs_tol=1e-12)  # 0.2k on both photo calls of a participant
