"""What each kind of Streamlit element costs to put on the dispatcher's screen (issue 6):
``python -m benchmarks.console_widget_cost [--copies N] [--repeats N] [KIND ...]``.

Answering a call draws the call screen: every widget on it is new, so the browser mounts each one. This serves a
one-page Streamlit app with the console's own settings (:func:`workbench.console.launch.streamlit_command`), whose
button draws ``--copies`` new elements of one kind (new keys each time, as a new call's widgets have) and then a
marker button; a headless Chromium clicks it and times click -> marker on screen (``requestAnimationFrame``), then
hides them again. The baseline, ``none``, draws the marker only: a rerun with nothing to mount. The cost of one
element is (median of the kind - median of ``none``) / copies. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.console_rig import CHROMIUM_ARGS, free_port

KINDS = ("none", "selectbox", "multiselect", "radio", "pills", "segmented_control", "text_input", "text_area",
         "checkbox", "button", "markdown", "columns4")
"""Element kinds measured; ``columns4`` is one ``st.columns(4)`` with a caption in each column."""

_APP = '''
import streamlit as st

ss = st.session_state
kind = st.query_params.get("kind", "none")
copies = int(st.query_params.get("copies", "5"))


def flip():
    ss.show = not ss.get("show", False)
    ss.round = ss.get("round", 0) + 1


st.button("toggle", key="toggle", on_click=flip)
r = ss.get("round", 0)
OPTIONS = ["fire", "traffic", "medical", "police", "hazmat", "water", "animal", "other"]
ITEMS = [f"item {i}" for i in range(12)]
if ss.get("show"):
    for i in range(copies):
        k = f"{kind}{i}_{r}"
        if kind == "selectbox":
            st.selectbox("Incident type", OPTIONS, index=None, key=k)
        elif kind == "multiselect":
            st.multiselect("Units", OPTIONS, key=k)
        elif kind == "radio":
            st.radio("Urgency", ["nu", "later", "spoed"], index=None, horizontal=True, key=k)
        elif kind == "pills":
            st.pills("Information gathered", ITEMS, selection_mode="multi", key=k)
        elif kind == "segmented_control":
            st.segmented_control("Confidence", [1, 2, 3, 4, 5], key=k)
        elif kind == "text_input":
            st.text_input("Location", key=k)
        elif kind == "text_area":
            st.text_area("Notes", height=68, key=k)
        elif kind == "checkbox":
            st.checkbox("Disagree", key=k)
        elif kind == "button":
            st.button("Close call", key=k, type="primary")
        elif kind == "markdown":
            st.markdown(f"**Caller {i}** · waiting 12 s")
        elif kind == "columns4":
            for column in st.columns(4):
                column.caption("x")
    st.button("end", key=f"end_{r}")
'''

_CLICK_JS = """async () => {
  const button = document.querySelector('.st-key-toggle button');
  const t0 = performance.now();
  button.click();
  return await new Promise((resolve) => {
    const check = () => {
      if (document.querySelector('[class*="st-key-end_"] button')) resolve(performance.now() - t0);
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
}"""


def measure(kinds: tuple[str, ...] = KINDS, copies: int = 5, repeats: int = 10,
            chromium: str = "/usr/bin/chromium") -> dict[str, list[float]]:
    """Click-to-visible ms per kind (``repeats`` samples each, in two passes over ``kinds``).
    Raises ``ValueError`` for an unknown kind, ``TimeoutError`` when Streamlit does not start in 30 s, Playwright's
    ``TimeoutError`` when the page does not draw."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    from playwright.sync_api import sync_playwright

    from workbench.console.launch import streamlit_command, wait_until_ready

    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "widgets.py"
        script.write_text(_APP, encoding="utf-8")
        port = free_port()
        server = subprocess.Popen(streamlit_command(port, script=script), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)  # nothing dials out
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                # Two passes over the kinds, so that drift during the run shows in every kind alike.
                for kind, count in [(k, (repeats + 1) // 2) for k in kinds] + [(k, repeats // 2) for k in kinds]:
                    page.goto(f"http://127.0.0.1:{port}/?kind={kind}&copies={copies}")
                    toggle = page.locator(".st-key-toggle button")
                    toggle.wait_for()
                    page.wait_for_timeout(800)
                    for _ in range(count):
                        samples[kind].append(float(page.evaluate(_CLICK_JS)))
                        page.wait_for_timeout(300)
                        toggle.click()  # hide them again (not timed)
                        page.wait_for_function("!document.querySelector('[class*=st-key-end_]')")
                        page.wait_for_timeout(300)
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", default=list(KINDS), help="element kinds (default: all)")
    parser.add_argument("--copies", type=int, default=5, help="elements drawn per click (default 5)")
    parser.add_argument("--repeats", type=int, default=10, help="clicks per kind (default 10)")
    args = parser.parse_args()
    kinds = tuple(dict.fromkeys(["none", *args.kinds]))
    samples = measure(kinds, args.copies, args.repeats)
    floor = statistics.median(samples["none"])
    print(f"| element | click to visible, median ms ({args.copies} drawn) | per element, ms |")
    print("|---|---:|---:|")
    for kind in kinds:
        median = statistics.median(samples[kind])
        each = "baseline" if kind == "none" else f"{(median - floor) / args.copies:.1f}"
        print(f"| {kind} | {median:.1f} | {each} |")


if __name__ == "__main__":
    main()
