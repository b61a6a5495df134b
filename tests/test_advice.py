"""workbench.screening.advice: the rule table with literal Dutch and English lines and synthetic media facts."""

from __future__ import annotations

from workbench.domain.taxonomy import Urgency
from workbench.runner.demo_media import DEMO_VOICE_TEXTS
from workbench.screening.advice import advise
from workbench.screening.image import FrameFacts, summarise
from workbench.screening.transcript import extract_facts


def frames(n: int, fire_frames: int, share: float = 0.05) -> list[FrameFacts]:
    """n video frames, the first ``fire_frames`` with ``share`` of moving fire (no smoke, bright, sharp)."""
    return [FrameFacts(share, share if i < fire_frames else 0.0, 0.0, 0.0, 0, 120.0, 500.0) for i in range(n)]


def rules(advice) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.rule for r in advice.reasons]


def test_nothing_special_is_later() -> None:
    advice = advise(extract_facts("Mijn fiets is gisteren gestolen"))
    assert advice.urgency is Urgency.LATER and advice.reasons == ()


def test_little_smoke_is_nu_with_its_evidence() -> None:
    advice = advise(extract_facts("just a little smoke"))
    assert advice.urgency is Urgency.NU and rules(advice) == ["T5"]
    assert advice.reasons[0].text == "fire or smoke mentioned (line 0: 'smoke')"


def test_dutch_people_inside_a_fire_is_spoed() -> None:
    advice = advise(extract_facts(["Er is brand", "Er zijn drie mensen binnen"]))
    assert advice.urgency is Urgency.SPOED and rules(advice) == ["T3", "T5"]


def test_injury_weapon_and_large_fire_rules() -> None:
    assert rules(advise(extract_facts("Er ligt een man bewusteloos"))) == ["T1"]
    assert advise(extract_facts("He has a knife")).urgency is Urgency.SPOED
    assert rules(advise(extract_facts("Er staat iemand met een mes"))) == ["T2"]
    assert rules(advise(extract_facts("Enorme vlammen uit het dak"))) == ["T4", "T5"]


def test_demo_calls_match_the_demo_scenarios_ground_truth() -> None:
    # experiments/demo/scenario.toml: the house fire is spoed, the collision nu
    fire = advise(extract_facts(DEMO_VOICE_TEXTS["demo_fire_voice"].split(". ")))
    assert fire.urgency is Urgency.SPOED and rules(fire) == ["T3", "T5"]  # "don't know if anyone is inside"
    collision = advise(extract_facts(DEMO_VOICE_TEXTS["demo_collision_voice"].split(". ")))
    assert collision.urgency is Urgency.NU and rules(collision) == ["T6"]  # nobody hurt: no T1


def test_media_findings_raise_the_advice_only_when_sure() -> None:
    speech = extract_facts("Er komt wat rook uit het huis")  # no size: T5 -> nu
    sure = summarise(frames(20, 20))           # 20/20 fire frames, Wilson low 0.84, size large (share 0.05 >= 0.03)
    assert sure.fire.low > 0.8 and sure.fire_smoke_size == "large"
    advice = advise(speech, sure)
    assert advice.urgency is Urgency.SPOED and rules(advice) == ["M1", "T5", "M2"]
    assert advice.reasons[0].text == f"images: large fire/smoke (fire frames 20/20, 95 % lower bound {sure.fire.low:.2f})"
    unsure = summarise(frames(20, 3))          # 3/20: Wilson low 0.05, below both media thresholds
    assert rules(advise(speech, unsure)) == ["T5"]
    small = summarise(frames(20, 20, share=0.01))  # sure, but small: M2 only
    assert rules(advise(extract_facts("hello"), small)) == ["M2"]
    assert advise(extract_facts("hello"), small).urgency is Urgency.NU


def test_collision_needs_a_collision_word() -> None:
    advice = advise(extract_facts("Twee auto's zijn op elkaar gebotst"))
    assert advice.urgency is Urgency.NU
    assert advice.reasons[0].text == "vehicles in a collision (line 0: 'gebotst'; line 0: 'auto's')"
    assert advise(extract_facts("Mijn auto staat fout geparkeerd")).urgency is Urgency.LATER
