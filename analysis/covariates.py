"""The participant's covariates (consent, end questionnaire, time on the instructions) as columns of
``sessions.csv``, from the participant-flow events (``participant.*``, declared in ``workbench.domain.events``).

Missing-data policy as in :mod:`analysis.trials`: a session run without the participant flow, or whose participant
stopped before the questionnaire, has empty cells, never a default value.
"""

from __future__ import annotations

from typing import Any, Sequence

from workbench.domain import events as ev

COVARIATE_SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("consent", "boolean", "", "Answer to the consent text (participant.consent given); empty without the "
     "participant flow."),
    ("consent_text_sha256", "string", "", "SHA-256 (hex) of the consent text the participant answered."),
    ("age_band", "string", "", "Age band from the end questionnaire: 18-24, 25-34, 35-44, 45-54, 55-64, 65+ or "
     "no_answer."),
    ("experience_years", "integer", "years", "Years of experience as a dispatcher, from the end questionnaire."),
    ("discipline", "string", "", "Discipline from the end questionnaire: ambulance, fire, police, "
     "multidisciplinary or none."),
    ("instructions_s", "number", "s", "Time on the instructions screen (participant.step instructions shown to "
     "done)."),
)
"""``(name, dtype, unit, meaning)`` of the covariate columns; ``analysis.trials`` declares them as columns of
``sessions.csv`` (plain tuples here so this module does not import the table module)."""


def covariate_values(events: Sequence[ev.Event]) -> dict[str, Any]:
    """The covariate cells of one session (keys as in :data:`COVARIATE_SPECS`; None where unknown). With several
    answers (a reloaded console) the last one counts; time is from the first ``shown`` to the first ``done``."""
    row: dict[str, Any] = {name: None for name, *_ in COVARIATE_SPECS}
    shown: int | None = None
    for event in events:
        data = event.data
        if isinstance(data, ev.ParticipantConsent):
            row["consent"], row["consent_text_sha256"] = data.given, data.text_sha256
        elif isinstance(data, ev.ParticipantQuestionnaire):
            row["age_band"], row["experience_years"] = data.age_band, data.experience_years
            row["discipline"] = data.discipline
        elif isinstance(data, ev.ParticipantStep) and data.step == "instructions":
            if data.phase == "shown" and shown is None:
                shown = event.t_mono_ns
            elif data.phase == "done" and shown is not None and row["instructions_s"] is None:
                row["instructions_s"] = round((event.t_mono_ns - shown) / 1e9, 3)
    return row
