"""What the participant flow shows (consent, instructions, practice banner, break, end questionnaire, thanks):
pure functions over a replayed :class:`SessionState`, no Streamlit. ``participant_flow.py`` draws it.

The texts are the lab's defaults; the SHA-256 of the consent text shown is recorded with the answer
(``participant.consent``), so a changed text is never mistaken for the one agreed to earlier.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from workbench.domain import events as ev
from workbench.domain.participant import AGE_BANDS, DISCIPLINES
from workbench.domain.session_state import SessionState

CONSENT_TEXT = """\
**Taking part in this study**

You are about to work a simulated shift as a 112 dispatcher. Simulated callers will report incidents by voice,
photo and live video; you handle each report in this console and rate how much effort it cost you.

- Everything you do in this console is recorded with exact times: your answers, clicks and ratings, and the
  callers' audio and video. Nothing is recorded of you through a camera or microphone.
- Your data carry only a pseudonym (for example P07). The link between the pseudonym and your name is kept
  outside the recordings by the research team, or not kept at all.
- Taking part is voluntary. You can stop at any moment without giving a reason, and you can withdraw your data
  afterwards by asking the research team; they are then deleted.
- The session takes about as long as the scenario (usually under an hour), with breaks between blocks.

If you agree, press **I agree**. If you do not, press **I do not agree**: the session ends at once and nothing
is recorded beyond your choice.
"""
"""The default consent text (Markdown)."""

INSTRUCTIONS_TEXT = """\
**How the shift works**

1. Calls arrive in the **queue**. Press **Answer** to take the oldest one.
2. Read what the caller says in the **transcript**, watch the **live video** and open the **photos** when they
   arrive.
3. Fill in the **intake**: incident type, urgency (`spoed` urgent, `nu` now, `later`), location and the
   information items you gathered. Tick the disagreement box when what the caller says and what the image shows
   do not agree.
4. Press **Close call**, then rate your **mental effort** (RSME, 0-150).
5. After each block of calls you rate the block on the **NASA-TLX**. Between blocks there may be a break.

Work as you would in the control room: as quickly and as completely as you can.
"""
"""The default instructions (Markdown); the practice block, when the scenario has one, is announced below them."""


class ConsentTextError(Exception):
    """The lab's consent file cannot be used; the message names the file and what is wrong."""


MAX_CONSENT_BYTES = 64 * 1024
"""A consent text longer than this is surely the wrong file."""


def read_consent_text(path: Path | None) -> str:
    """The consent text to show: the file at ``path`` (Markdown, UTF-8), or :data:`CONSENT_TEXT` when None.

    Raises :class:`ConsentTextError` when the file is missing, empty, too long or not UTF-8: a participant must
    never be shown another text than the one the lab meant."""
    if path is None:
        return CONSENT_TEXT
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConsentTextError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if len(data) > MAX_CONSENT_BYTES:
        raise ConsentTextError(f"{path}: {len(data)} bytes; a consent text is at most {MAX_CONSENT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConsentTextError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from exc
    if not text.strip():
        raise ConsentTextError(f"{path}: the file is empty")
    return text


def consent_sha256(text: str = CONSENT_TEXT) -> str:
    """SHA-256 (hex) of the consent text's UTF-8 bytes, recorded with the participant's answer."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flow_screen(state: SessionState, base_kind: str) -> str:
    """The participant-flow screen that takes the page, or ``""`` when the console's own screen ``base_kind``
    (``queue``, ``active``, ``rsme``, ``tlx``, ...) is shown.

    In order: ``consent`` (no answer yet), ``refused`` (consent refused), ``instructions`` (not started yet); then,
    only while the console would show the queue (no call in hand, no rating due): ``end`` (questionnaire
    answered), ``questionnaire`` (every block of the session ended), ``break`` (a break between blocks runs).
    """
    flow = state.flow
    if flow.consent is None:
        return "" if state.ended else "consent"
    if flow.consent is False:
        return "refused"
    if not flow.has_step("instructions", "done"):
        return "instructions"
    if base_kind != "queue":
        return ""
    if flow.questionnaire is not None:
        return "end"
    if state.block_order and all(b in state.blocks_ended for b in state.block_order):
        return "questionnaire"
    if flow.break_after and not state.ended:
        return "break"
    return ""


def practice_block(state: SessionState) -> str:
    """The practice block running now (marked ``block.practice`` and not ended), else ``""``."""
    block = state.current_block
    if block and block in state.flow.practice_blocks and block not in state.blocks_ended:
        return block
    return ""


def first_block_is_practice(state: SessionState, practice_ids: set[str]) -> bool:
    """Whether the session's first block is a practice block (``practice_ids`` from the scenario copy)."""
    return bool(state.block_order) and state.block_order[0] in practice_ids


def step_to_post(state: SessionState, step: str, phase: str = "shown", block_id: str = "") -> ev.ParticipantStep | None:
    """The ``participant.step`` to post for a screen now drawn, or None when the log holds it already (a rerun or a
    reloaded page must not time a screen twice)."""
    if state.flow.has_step(step, phase, block_id):
        return None
    return ev.ParticipantStep(step, phase, block_id)


def break_text(remaining_s: float, after_block_label: str) -> str:
    """``"The next block starts in about 42 s."`` (whole seconds, rounded up; ``"any moment"`` at 0)."""
    if remaining_s <= 0:
        return f"Break after {after_block_label}. The next block starts any moment."
    return f"Break after {after_block_label}. The next block starts in about {int(-(-remaining_s // 1))} s."


def questionnaire_payload(age_band: str | None, experience_years: int | float | None,
                          discipline: str | None) -> ev.ParticipantQuestionnaire:
    """The ``participant.questionnaire`` payload from the form's values; raises ``EventValidationError`` naming
    each missing or invalid answer."""
    missing = [name for name, value in (("age band", age_band), ("years of experience", experience_years),
                                        ("discipline", discipline)) if value is None or value == ""]
    if missing:
        raise ev.EventValidationError(f"please answer: {', '.join(missing)}")
    years = experience_years
    if isinstance(years, float):
        if not years.is_integer():
            raise ev.EventValidationError(f"years of experience must be whole years, got {years}")
        years = int(years)
    payload = ev.ParticipantQuestionnaire(str(age_band), years, str(discipline))  # type: ignore[arg-type]
    payload.check()
    return payload


def age_band_label(key: str) -> str:
    """Label of an age band key (the selectbox's ``format_func``)."""
    return AGE_BANDS[key]


def discipline_label(key: str) -> str:
    """Label of a discipline key (the radio's ``format_func``)."""
    return DISCIPLINES[key]
