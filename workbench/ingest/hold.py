"""What the ingest does when the dispatcher puts a call on hold (issue 6): the caller must not hear the dispatcher.

The console's Hold removes the live view, and with it the dispatcher's microphone connection, so talk-back would
end by itself once the ingest notices that connection is gone (``dispatcher.talk`` origin ``microphone_ended``).
That can take seconds (the peer connection has to time out) and depends on the page behaving; so the ingest
switches talk-back off itself the moment ``call.held`` is logged, through the same gate as every other talk change
(origin ``hold``). Resume does not switch it back on: talking again is the dispatcher's explicit choice.
"""

from __future__ import annotations

from workbench.domain import events as ev
from workbench.ingest.calls import Calls


def after_console_event(calls: Calls, session_id: str, call_id: str | None, payload: ev.Payload) -> ev.DispatcherTalk | None:
    """React to an event just logged for ``call_id`` of session ``session_id`` (``call_id`` None for session-wide
    events): on ``call.held`` stop an active talk-back. Returns the ``dispatcher.talk`` event written (origin
    ``hold``), or None when nothing changed (another event type, a call unknown here, of another session or ended, a
    session without talk-back, or talk already off). Raises nothing."""
    if call_id is None or not isinstance(payload, ev.CallHeld) or calls.session_of(call_id) != session_id:
        return None
    call = calls.by_id(call_id)
    talk = call.media.talkback
    if call.ended or talk is None or not talk.talking:
        return None
    return talk.set_talking(False, "hold")
