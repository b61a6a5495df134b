"""Garbage collection in the console's Streamlit process (issue 6).

Streamlit's collection after every run is switched off (``--runner.postScriptGC false`` in
:func:`workbench.console.launch.streamlit_command`); Python's own full collections remained, and each walked every
object the process had loaded (Streamlit, pandas, pyarrow, ...): 120-320 ms holding the GIL, about every 25 s
with a call in hand under load (``python -m benchmarks.console_trace``), stalling whatever click was under way.
:func:`freeze_loaded_objects` moves the objects alive after the first run into the permanent generation
(``gc.freeze``), so later collections walk only what the page created since.

Call it once per process, not on every run: its own check whether it froze already (``gc.get_freeze_count``) walks
every frozen object, 7 ms for the 87,000 objects of ``import streamlit, pandas`` and about 15 ms in the console,
which was a third of the script's time in each full rerun (cProfile of the call screen's rerun). The page calls it
through :func:`streamlit.cache_resource` (``app.freeze_loaded_objects_once``).
"""

from __future__ import annotations

import gc


def freeze_loaded_objects() -> bool:
    """Freeze the objects alive now, once per process (a later call does nothing: freezing on every run would
    keep every run's garbage cycles, but the check costs a walk over the frozen objects). Returns whether this call
    froze them."""
    if gc.get_freeze_count():
        return False
    gc.collect()  # what is garbage already is not frozen
    gc.freeze()
    return True
