"""Hold and Resume with the caller's audio (issue 6): what the dispatcher hears is in the log, not inferred.

How the audio follows the call
------------------------------
* **Hold** removes the live view from the console (the screen goes back to the queue), so the caller's audio stops
  with its WebRTC connection, and the ingest switches an active talk-back off the moment ``call.held`` is logged
  (:mod:`workbench.ingest.hold`, ``dispatcher.talk`` origin ``hold``): the caller never hears the dispatcher while
  on hold. Logged: ``call.held`` then ``console.audio`` {muted, hold}.
* **Resume** draws the live view again and it plays the caller's audio without another click. Why that holds in
  Chromium: its autoplay policy lets a frame play sound when the frame *or an ancestor* has sticky user activation
  and the ``autoplay`` permission is delegated down to it; Streamlit's ``st.iframe`` delegates ``autoplay`` (and
  ``microphone``), and the console page got sticky activation from the Answer click and again from the Resume
  click, for the life of the page. In a talk-back session the viewer also captures the microphone, which Chromium
  counts as allowed to play as well (tests/test_hold_audio.py proves the sound in that setting, without telling
  the two reasons apart). The viewer keeps its fallback (start muted, "Hear the caller") for browsers that still
  refuse, e.g. after a reload of a page that was never clicked; before this module that fallback fired on every
  call, because the viewer's second ``srcObject`` assignment aborted its own ``play()``. Logged: ``call.resumed``
  then ``console.audio`` {unmuted, resume}.
* **Mute caller** on the live view (the console embeds it with ``?dispatcher=1``, :func:`viewer_url`): the
  dispatcher's own mute; the page logs ``console.audio`` {muted|unmuted, dispatcher} itself.

Chosen over keeping the viewer mounted and muting it by ``postMessage``: a held call's viewer would have to stay
in the page (hidden) while the dispatcher answers another call, i.e. two relays and two microphones, and the
console's layout (being restructured for faster reruns) would have to keep one iframe alive across screens.
"""

from __future__ import annotations

from workbench.console import viewmodel as vm
from workbench.console.ingest_client import IngestClient
from workbench.domain import events as ev
from workbench.domain.session_state import CallState


def viewer_url(public_base: str, call_id: str) -> str:
    """The live view as the console embeds it: :func:`viewmodel.viewer_url` with ``?dispatcher=1``, which shows the
    dispatcher's "Mute caller" control and logs it (``console.audio``, reason ``dispatcher``)."""
    return vm.viewer_url(public_base, call_id) + "?dispatcher=1"


def hold(client: IngestClient, session_id: str, call: CallState | None, station: str) -> bool:
    """Put ``call`` on hold and log that its audio is muted: ``call.held`` then ``console.audio`` {muted, hold}.

    Nothing is posted when the call is unknown (None), not being handled, or already on hold (a double click posts
    once). Returns whether the call was put on hold. Raises :class:`~workbench.console.ingest_client.IngestError`
    when the ingest refuses or cannot be reached."""
    held = ev.CallHeld(station)
    if call is None or not vm.is_news(call, held):
        return False
    client.post_event(session_id, call.call_id, held)
    client.post_event(session_id, call.call_id, ev.ConsoleAudio("muted", "hold"))
    return True


def resume(client: IngestClient, session_id: str, call: CallState | None, station: str) -> bool:
    """Take ``call`` back from hold and log that its audio plays again: ``call.resumed`` then ``console.audio``
    {unmuted, resume}. Nothing is posted unless the call is on hold. Returns whether it was resumed. Raises
    :class:`~workbench.console.ingest_client.IngestError` when the ingest refuses or cannot be reached."""
    resumed = ev.CallResumed(station)
    if call is None or not vm.is_news(call, resumed):
        return False
    client.post_event(session_id, call.call_id, resumed)
    client.post_event(session_id, call.call_id, ev.ConsoleAudio("unmuted", "resume"))
    return True
