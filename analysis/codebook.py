"""Generate ``codebook.md`` from the declarations: the output columns (:mod:`analysis.trials`) and the event types
(:func:`workbench.domain.events.describe_event_types`). Never edit the generated file by hand."""

from __future__ import annotations

from typing import Sequence

from analysis.automation import codebook_tables as automation_codebook_tables
from analysis.imports import RSME_SHEET_COLUMNS, TLX_SHEET_COLUMNS
from analysis.instruments import DRT_COLUMNS, FOCUS_COLUMNS, MEDIA_VIEW_COLUMNS
from analysis.summary import BLOCK_COLUMNS, CONFUSION_COLUMNS, SUMMARY_COLUMNS
from analysis.tables import DISAGREEMENT_COLUMNS, FORM_CHANGE_COLUMNS, event_columns
from analysis.trials import QUALITY_COLUMNS, SESSION_COLUMNS, TRIAL_COLUMNS, Column
from workbench.domain.events import EVENT_SCHEMA, describe_event_types


def tables() -> tuple[tuple[str, str, tuple[Column, ...]], ...]:
    """Output tables described by the codebook: file name, what a row is, declared columns. Every table is also
    written as Parquet (same name, ``.parquet``)."""
    return (
        ("trials.csv", "One row per participant x session x block x call, in session then call-creation order.",
         TRIAL_COLUMNS),
        ("sessions.csv", "One row per session folder found, with what is wrong with it.", SESSION_COLUMNS),
        ("events.csv", "One row per sound event of every session, in session then seq order; payload fields "
         "flattened into data_ columns.", event_columns()),
        ("summary.csv", "One row per statistic: measure x contrast x level x method (see analysis/summary.py); "
         "every number with its n.", SUMMARY_COLUMNS),
        ("confusion.csv", "Confusion matrices (ground truth x given) of urgency and incident type, one row per cell, "
         "over closed non-practice calls with ground truth.", CONFUSION_COLUMNS),
        ("data_quality.csv", "Every excluded, repaired or reported record.", QUALITY_COLUMNS),
        ("form_changes.csv", "One row per change of a call's intake form (intake.* events), in log order.",
         FORM_CHANGE_COLUMNS),
        ("disagreement.csv", "Designed speech/image disagreement per modality x aspect over non-practice calls with "
         "ground truth, and how often it was flagged.", DISAGREEMENT_COLUMNS),
        ("blocks.csv", "One row per participant x block with a NASA-TLX rating (rating.nasa_tlx events and "
         "sheets imported with --ratings).", BLOCK_COLUMNS),
        ("drt.csv", "One row per DRT stimulus of every session, scored by ISO 17488 and placed in its block and "
         "call.", DRT_COLUMNS),
        ("media_views.csv", "One row per photo view (photo.opened until the next open or close).", MEDIA_VIEW_COLUMNS),
        ("focus.csv", "One row per focus interval (console.focus until the next one or the call's close).",
         FOCUS_COLUMNS),
        *automation_codebook_tables(),
        ("ratings_rsme.csv", "Written when RSME sheets are given with --ratings: one row per rated line.",
         RSME_SHEET_COLUMNS),
        ("ratings_nasa_tlx.csv", "Written when NASA-TLX sheets are given with --ratings: one row per rated line. "
         "A sheet may carry the weights as six tally columns (weight_mental, gewicht_mentaal, ...: integers 0-5 "
         "summing to 15) or as 15 pairwise-choice columns (mental vs physical, Mentaal/Fysiek, or pair_1 ... pair_15 "
         "in the order mental-physical, mental-temporal, mental-performance, mental-effort, mental-frustration, "
         "physical-temporal, ..., effort-frustration), each naming the subscale chosen; impossible weights are "
         "refused with the line.", TLX_SHEET_COLUMNS),
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (no pipes or line breaks)."""
    return " ".join(text.replace("|", "\\|").split())


def columns_table(columns: Sequence[Column]) -> str:
    """A Markdown table (name, type, unit, meaning) of ``columns``."""
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    for c in columns:
        lines.append(f"| `{c.name}` | {c.dtype} | {_cell(c.unit) or '-'} | {_cell(c.meaning)} |")
    return "\n".join(lines)


def events_section() -> str:
    """The "Events" section: every declared event type, who emits it, whether it is call-scoped, its fields."""
    parts = [
        "## Events",
        "",
        f"Lines of `events.jsonl` (event schema {EVENT_SCHEMA}). Every line has the envelope `schema`, `session_id`, "
        "`seq` (1, 2, 3, ... without gaps), `t_mono_ns` (ns, monotonic clock of the ingest run), `t_wall` "
        "(UTC ISO 8601), `source`, `type`, `call_id` (for call-scoped events, else null) and `data` (the fields "
        "below).",
    ]
    for doc in describe_event_types():
        parts += [
            "",
            f"### `{doc.event_type}`",
            "",
            _cell(doc.doc),
            "",
            f"- emitted by: {', '.join(doc.sources)}",
            f"- call-scoped: {'yes' if doc.call_scoped else 'no'}",
            "",
            "| field | JSON type | meaning |",
            "|---|---|---|",
        ]
        parts += [f"| `{f.name}` | {f.json_type} | {_cell(f.doc)} |" for f in doc.fields]
    return "\n".join(parts)


def render_codebook() -> str:
    """The whole ``codebook.md`` text (Markdown, ends with a newline)."""
    parts = [
        "# Codebook",
        "",
        "Generated by `analysis.codebook` from the column and event declarations; do not edit by hand. "
        "Empty cells mean the value could not be computed (see each column); booleans are `True`/`False`; "
        "times are seconds rounded to 3 decimals.",
    ]
    for name, row_meaning, columns in tables():
        parts += ["", f"## {name}", "", row_meaning, "", columns_table(columns)]
    parts += ["", events_section()]
    return "\n".join(parts) + "\n"
