"""Timing hooks for the console's Streamlit process, loaded only by ``benchmarks.console_trace`` (which puts this
folder first on the console's ``PYTHONPATH`` and names the output file in ``CONSOLE_TRACE_FILE``).

One JSON line per record, ``t`` in ms since the epoch (same machine as the browser, so both clocks compare):
``back`` (a message from the browser: reruns with their fragment and clicked widget), ``run_start`` / ``run_end``
(each script or fragment run, with its thread CPU and wall ms), ``send`` (each message queued for the browser, with
its type and size), ``http`` (each request to the ingest, ms), ``gc`` (collections over 2 ms).

Reads Streamlit 1.67's private classes; on another version a hook that no longer fits is skipped and named in a
``patch_error`` record.
"""

import os

if os.environ.get("CONSOLE_TRACE_FILE"):
    import gc
    import json
    import threading
    import time

    _lock = threading.RLock()  # re-entrant: the gc callback may fire while this thread writes a record
    _out = open(os.environ["CONSOLE_TRACE_FILE"], "a", buffering=1, encoding="utf-8")
    _gc_start: dict = {}
    _run_start: dict = {}

    def _rec(kind, **fields):
        fields.update(k=kind, t=time.time() * 1000, th=threading.current_thread().name)
        with _lock:
            _out.write(json.dumps(fields, default=str) + "\n")

    def _on_gc(phase, info):
        if phase == "start":
            _gc_start[threading.get_ident()] = time.perf_counter()
        elif (t0 := _gc_start.pop(threading.get_ident(), None)) is not None:
            ms = (time.perf_counter() - t0) * 1000
            if ms > 2:
                _rec("gc", gen=info.get("generation"), ms=ms)

    gc.callbacks.append(_on_gc)

    def _wrap(owner, name, make):
        try:
            setattr(owner, name, make(getattr(owner, name)))
        except Exception as exc:  # another Streamlit version: trace what still fits
            _rec("patch_error", hook=f"{owner.__name__}.{name}", error=repr(exc))

    def _install():
        from streamlit.runtime import app_session
        from streamlit.runtime.scriptrunner import script_runner
        from streamlit.runtime.scriptrunner_utils import script_run_context
        from streamlit.web.server.starlette import starlette_websocket

        from workbench.console import ingest_client  # every import first: a retry after ImportError wraps once

        def back(orig):
            def handle_backmsg(self, msg):
                kind = msg.WhichOneof("type")
                extra = {}
                if kind == "rerun_script":
                    cs = msg.rerun_script
                    extra = dict(frag=cs.fragment_id, auto=cs.is_auto_rerun,
                                 triggers=[w.id.rsplit("-", 2)[-2:] for w in cs.widget_states.widgets
                                           if w.WhichOneof("value") == "trigger_value" and w.trigger_value])
                _rec("back", typ=kind, **extra)
                return orig(self, msg)
            return handle_backmsg

        def reset(orig):
            def wrapped(self, *a, **kw):
                _run_start[threading.get_ident()] = (time.thread_time(), time.time())
                _rec("run_start", frags=kw.get("fragment_ids_this_run"))
                return orig(self, *a, **kw)
            return wrapped

        def finished(orig):
            def wrapped(self, ctx, event, *a, **kw):
                cpu0, wall0 = _run_start.get(threading.get_ident(), (time.thread_time(), time.time()))
                _rec("run_end", ev=str(event).rsplit(".", 1)[-1], cpu_ms=(time.thread_time() - cpu0) * 1000,
                     wall_ms=(time.time() - wall0) * 1000)
                return orig(self, ctx, event, *a, **kw)
            return wrapped

        def send(orig):
            def write_forward_msg(self, msg):
                result = orig(self, msg)
                extra = {}
                if msg.WhichOneof("type") == "delta":
                    d = msg.delta
                    kind = d.WhichOneof("type")
                    extra["path"] = list(msg.metadata.delta_path)
                    extra["el"] = d.new_element.WhichOneof("type") if kind == "new_element" else kind
                    if kind == "add_block":
                        extra["el"] = "block:" + str(d.add_block.WhichOneof("type"))
                _rec("send", typ=msg.WhichOneof("type"), size=msg.ByteSize(), **extra)
                return result
            return write_forward_msg

        _wrap(app_session.AppSession, "handle_backmsg", back)
        _wrap(script_run_context.ScriptRunContext, "reset", reset)
        _wrap(script_runner.ScriptRunner, "_on_script_finished", finished)
        _wrap(starlette_websocket.StarletteSessionClient, "write_forward_msg", send)

        def request(orig):
            def _request(self, method, path, *a, **kw):
                t0 = time.perf_counter()
                try:
                    return orig(self, method, path, *a, **kw)
                finally:
                    _rec("http", m=method, p=path.split("?")[0], ms=(time.perf_counter() - t0) * 1000)
            return _request

        _wrap(ingest_client.IngestClient, "_request", request)
        _rec("installed")

    def _install_when_loaded():
        # Streamlit's modules load after this file runs (the CLI imports them): retry until they can be imported.
        for _ in range(600):
            try:
                _install()
                return
            except ImportError:
                time.sleep(0.05)
        _rec("patch_error", hook="install", error="streamlit did not load within 30 s")

    threading.Thread(target=_install_when_loaded, name="console-trace-install", daemon=True).start()
