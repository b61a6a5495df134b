"""The participant's flow around a session (issue 7): consent, instructions, practice, breaks, end questionnaire.

Pure: the vocabularies of the end questionnaire and :class:`FlowState`, the participant's progress folded from a
session's events (``participant.*``, ``block.*``, ``break.*``), which the console uses to choose the screen and the
runner to know when the questionnaire is in. The screens themselves are drawn by
``workbench.console.participant_flow``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AGE_BANDS: dict[str, str] = {
    "18-24": "18 to 24",
    "25-34": "25 to 34",
    "35-44": "35 to 44",
    "45-54": "45 to 54",
    "55-64": "55 to 64",
    "65+": "65 or older",
    "no_answer": "I prefer not to say",
}
"""Age bands of the end questionnaire (key -> label); bands rather than a birth date, so that no recorded value
narrows the pseudonym down to a person."""

DISCIPLINES: dict[str, str] = {
    "ambulance": "Ambulance (medical)",
    "fire": "Fire service",
    "police": "Police",
    "multidisciplinary": "Multidisciplinary control room",
    "none": "Not a dispatcher (student, researcher, other)",
}
"""The dispatcher's discipline (key -> label); Dutch control rooms (meldkamers) are organised per discipline or
shared (multidisciplinary)."""

EXPERIENCE_MAX_YEARS = 50
"""Upper bound of the years of experience as a dispatcher a participant can enter (0 to 50, whole years)."""

FLOW_STEPS = ("consent", "instructions", "practice", "break", "questionnaire", "end")
"""Screens of the participant flow whose showing (and finishing) is timed by ``participant.step`` events."""

STEP_PHASES = ("shown", "done")
"""``shown``: the screen appeared on the participant's console; ``done``: the participant left it."""


def check_questionnaire(age_band: str, experience_years: int, discipline: str) -> list[str]:
    """What is wrong with an end questionnaire (empty when it is valid): each message names the field and what is
    allowed. ``experience_years`` is whole years as a dispatcher, 0 to :data:`EXPERIENCE_MAX_YEARS`."""
    problems = []
    if age_band not in AGE_BANDS:
        problems.append(f"age_band must be one of {', '.join(AGE_BANDS)}, got {age_band!r}")
    if isinstance(experience_years, bool) or not isinstance(experience_years, int) or not (
        0 <= experience_years <= EXPERIENCE_MAX_YEARS
    ):
        problems.append(f"experience_years must be a whole number 0-{EXPERIENCE_MAX_YEARS}, got {experience_years!r}")
    if discipline not in DISCIPLINES:
        problems.append(f"discipline must be one of {', '.join(DISCIPLINES)}, got {discipline!r}")
    return problems


@dataclass
class FlowState:
    """The participant's progress through the flow, folded from the session's events in log order.

    ``consent`` is None until ``participant.consent``, then whether it was given; ``steps`` holds the
    ``(step, phase, block_id)`` of every ``participant.step`` seen; ``questionnaire`` the answers
    (``age_band``, ``experience_years``, ``discipline``) once given; ``practice_blocks`` the blocks marked
    ``block.practice``; ``break_after`` the block whose break is running (empty when none), with its start
    (``break_started_ns``, ingest clock) and planned length ``break_duration_s``.
    """

    consent: bool | None = None
    steps: set[tuple[str, str, str]] = field(default_factory=set)
    questionnaire: dict[str, object] | None = None
    practice_blocks: set[str] = field(default_factory=set)
    break_after: str = ""
    break_started_ns: int | None = None
    break_duration_s: float = 0.0
    started: bool = False
    """A ``start`` control was written (the runner holds the first block until then with ``--wait-start``)."""

    def has_step(self, step: str, phase: str, block_id: str = "") -> bool:
        """Whether ``participant.step`` with these values is in the log already."""
        return (step, phase, block_id) in self.steps

    @property
    def finished(self) -> bool:
        """The participant is done: consent refused, or the end questionnaire answered."""
        return self.consent is False or self.questionnaire is not None

    def break_remaining_s(self, now_ns: int) -> float:
        """Seconds left of the running break at ``now_ns`` (ingest clock), never below 0; 0 without a break.
        Pauses of the session lengthen a break; this estimate does not know about them."""
        if not self.break_after or self.break_started_ns is None:
            return 0.0
        return max(0.0, self.break_duration_s - (now_ns - self.break_started_ns) / 1e9)
