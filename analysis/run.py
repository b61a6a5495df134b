"""``analyze()``: recordings (and ratings sheets) in; tidy tables, statistics, codebook and report out.

Reads recordings only (the store's read side); never imports the ingest, runner or console. Output files (CSV, and
Parquet for every table): ``trials``, ``sessions``, ``events``, ``summary``, ``confusion``, ``data_quality``,
``form_changes`` (every intake change), ``disagreement`` (designed disagreement per aspect and modality, flagged),
``blocks`` (NASA-TLX per block: events and imported sheets), ``drt`` (every DRT stimulus, ISO 17488 scored),
``media_views`` (photo dwell), ``focus`` (attention per panel),
``ratings_rsme``/``ratings_nasa_tlx`` (when sheets were given), ``codebook.md``, ``report.html`` and the plots in
``plots/`` (PNG and SVG).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from analysis.background_write import start as start_write
from analysis.codebook import render_codebook
from analysis.csv_fast import write_table_csv
from analysis.imports import RatingsImportError, detect_kind, read_ratings_csv
from analysis.instruments import DRT_COLUMNS, FOCUS_COLUMNS, MEDIA_VIEW_COLUMNS
from analysis.load import AnalysisError, AnalysisInputError, LoadedSession, find_sessions
from analysis.reading import designed_disagreement, read_sessions
from analysis.report_plots import start_plots
from analysis.summary import BLOCK_COLUMNS, build_summary, confusion_tables
from analysis.tables import DISAGREEMENT_COLUMNS, FORM_CHANGE_COLUMNS, disagreement_rows
from analysis.trials import QUALITY_COLUMNS, SESSION_COLUMNS, TRIAL_COLUMNS, frame

__all__ = [
    "AnalysisError", "AnalysisInputError", "AnalysisResult", "RatingsImportError", "analyze", "session_row",
]

CSV_SLICE_ROWS = 50_000
"""Rows converted and written at a time by the CSV writer."""

PROBLEM_SEPARATOR = " | "
"""Joins a session's problems in the ``problems`` column of ``sessions.csv``."""


@dataclass
class AnalysisResult:
    """What :func:`analyze` read and wrote.

    ``sessions_with_problems`` maps a session id to its problems (only sessions with at least one); the frames are
    the tables as written; ``files`` the paths written, in writing order.
    """

    sessions_loaded: int
    sessions_with_problems: dict[str, list[str]]
    trials: pd.DataFrame
    sessions: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    confusion: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    quality: pd.DataFrame | None = None
    ratings: dict[str, pd.DataFrame] = field(default_factory=dict)
    blocks: pd.DataFrame | None = None
    drt: pd.DataFrame | None = None
    form_changes: pd.DataFrame | None = None
    disagreement: pd.DataFrame | None = None
    automation: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Link proposals, triage advice and screening tables (:mod:`analysis.automation`, issue 11)."""

    @property
    def problems_text(self) -> str:
        """Human-readable problem report for stderr, one line per problem; empty when nothing is wrong."""
        lines = []
        for session_id, problems in self.sessions_with_problems.items():
            lines += [f"{session_id}: {p}" for p in problems]
        return "\n".join(lines)


def session_row(session: LoadedSession) -> dict[str, Any]:
    """The ``sessions.csv`` row of a loaded session (header fields from session.json, else session.started)."""
    header = session.header
    started = session.started
    seed = header.get("seed", getattr(started, "seed", None))
    practice = session.practice_blocks
    return {
        "session_id": session.session_id,
        "participant": session.participant,
        "scenario_id": session.scenario_id,
        "scenario_sha256": header.get("scenario_sha256", getattr(started, "scenario_sha256", None)),
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "block_order": ";".join(session.block_order),
        "software_version": header.get("software_version", getattr(started, "software_version", None)),
        "started_at": header.get("started_at"),
        "events": session.n_events,
        "calls": len(session.state.calls),
        "ended": session.state.ended,
        "end_reason": session.end_reason or None,
        "lines_skipped": session.lines_skipped,
        "calls_missing": session.calls_missing,
        "practice_calls": sum(1 for c in session.state.calls.values() if c.block_id in practice),
        "problems": PROBLEM_SEPARATOR.join(session.problems),
    } | session.covariates


def _quality_rows(sessions: Sequence[LoadedSession], trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Every excluded, repaired or suspicious record: session problems, practice calls, calls without a measure."""
    rows: list[dict[str, Any]] = []
    for s in sessions:
        for problem in s.problems:
            # A line of events.jsonl that could not be read is left out; everything else is analysed as it is.
            handling = "excluded" if problem.startswith("events.jsonl") and ": seq " not in problem else "reported"
            rows.append({"session_id": s.session_id, "call_id": None, "record": "session", "problem": problem,
                         "handling": handling})
    for r in trials.to_dict("records"):
        where = {"session_id": r["session_id"], "call_id": r["call_id"], "record": "call"}
        if r["practice"] is True:
            rows.append(where | {"problem": f"practice block {r['block_id']}", "handling": "excluded"})
        elif r["answered"] is not True:
            rows.append(where | {"problem": "never answered: no measures", "handling": "excluded"})
        elif r["closed"] is not True:
            rows.append(where | {"problem": "answered but never closed: no handling time, accuracy or completeness",
                                 "handling": "excluded"})
        elif r["rsme"] is pd.NA or r["rsme"] is None:
            rows.append(where | {"problem": "closed without an RSME rating", "handling": "reported"})
    return rows


def merge_rsme(trials: pd.DataFrame, ratings: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Fill empty ``rsme`` cells of ``trials`` from an imported RSME sheet (:func:`read_ratings_csv`, kind rsme).

    A rating matches the trial with the same participant and scenario call (and session, when the sheet has one).
    Ratings that match no trial, or several (a scenario call worked more than once), are not used; a rating for a
    call that already has a recorded rating is not used either (the recording wins). Returns the new trials and
    one data-quality row per rating not used or used (``handling`` ``repaired`` for filled cells).
    """
    trials = trials.copy()
    quality: list[dict[str, Any]] = []
    for r in ratings.to_dict("records"):
        source = f"{r['source_file']} line {r['source_line']}"
        mask = (trials["participant"] == r["participant"]) & (trials["scenario_call_id"] == r["scenario_call_id"])
        session_id = r.get("session_id")
        if session_id is not None and not pd.isna(session_id):  # `in (None, pd.NA)` compares with NA: TypeError
            mask &= trials["session_id"] == session_id
        mask = mask.fillna(False).astype(bool)
        matches = trials.index[mask].tolist()
        base = {"session_id": None, "call_id": None, "record": "rating"}
        if pd.isna(r["rsme"]):
            quality.append(base | {"problem": f"{source}: empty rating", "handling": "excluded"})
        elif len(matches) != 1:
            what = "matches no call" if not matches else f"matches {len(matches)} calls (ambiguous)"
            quality.append(base | {"problem": f"{source}: rating of {r['participant']}/{r['scenario_call_id']} "
                                   f"{what}", "handling": "excluded"})
        else:
            i = matches[0]
            where = base | {"session_id": trials.at[i, "session_id"], "call_id": trials.at[i, "call_id"]}
            if pd.isna(trials.at[i, "rsme"]):
                trials.at[i, "rsme"] = float(r["rsme"])
                trials.at[i, "rsme_source"] = "import"
                quality.append(where | {"problem": f"RSME {r['rsme']:g} taken from {source}", "handling": "repaired"})
            elif float(trials.at[i, "rsme"]) != float(r["rsme"]):
                quality.append(where | {"problem": f"{source}: RSME {r['rsme']:g} differs from the recorded "
                                        f"{float(trials.at[i, 'rsme']):g}; the recording is used",
                                        "handling": "excluded"})
    return trials, quality


def blocks_from_tlx(trials: pd.DataFrame, tlx: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``blocks.csv`` rows from an imported NASA-TLX sheet (:func:`read_ratings_csv`, kind nasa_tlx): each rating
    joined to the recorded block of the same participant and block id (and session, when the sheet has one) for its
    modality and practice flag. A rating that matches no recorded block, or blocks in several sessions, keeps empty
    modality/session and is reported (it then enters no modality comparison). Returns (rows, data-quality rows)."""
    from analysis.imports import TLX_SUBSCALES

    rows, quality = [], []
    for r in tlx.to_dict("records"):
        mask = (trials["participant"] == r["participant"]) & (trials["block_id"] == r["block_id"])
        if not pd.isna(r.get("session_id")):
            mask &= trials["session_id"] == r["session_id"]
        found = trials[mask.fillna(False).astype(bool)][["session_id", "modality", "practice"]].drop_duplicates()
        row: dict[str, Any] = {"participant": r["participant"], "session_id": None, "block_id": r["block_id"],
                               "modality": None, "practice": None, "source": "import"}
        row |= {name: (None if pd.isna(r.get(name)) else float(r[name]))
                for name in TLX_SUBSCALES + ("raw_tlx", "weighted_tlx")}
        if len(found) == 1:
            match = found.iloc[0]
            row |= {"session_id": match["session_id"], "modality": match["modality"],
                    "practice": bool(match["practice"]) if not pd.isna(match["practice"]) else None}
        else:
            what = "matches no recorded block" if found.empty else f"matches blocks in {len(found)} sessions"
            quality.append({"session_id": None, "call_id": None, "record": "rating",
                            "problem": f"{r['source_file']} line {r['source_line']}: NASA-TLX of "
                                       f"{r['participant']}/{r['block_id']} {what}: no modality",
                            "handling": "excluded"})
        rows.append(row)
    return rows, quality


_designed_disagreement = designed_disagreement  # the name this module had for it


def _with_drt(trials: pd.DataFrame, drt: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with drt_stimuli, drt_hit_rate and drt_hit_rt_ms from the scored stimuli placed in each call."""
    if drt.empty:
        return trials
    placed = drt.dropna(subset=["call_id"])
    if placed.empty:
        return trials
    hit = placed["outcome"] == "hit"
    per_call = placed.assign(hit=hit.astype(float), hit_rt=placed["rt_ms"].where(hit)).groupby(
        ["session_id", "call_id"]).agg(n=("hit", "size"), rate=("hit", "mean"), rt=("hit_rt", "mean"))
    # One aligned lookup per column instead of a .loc assignment per call (6000 of them took ~25 s at 100 x 60);
    # Python's round() as before, so the numbers are the same to the last digit.
    keys = pd.MultiIndex.from_arrays([trials["session_id"], trials["call_id"]])
    found = per_call.reindex(keys)
    matched = found["n"].notna().to_numpy()
    trials = trials.copy()
    columns = {
        "drt_stimuli": ("Int64", [None if pd.isna(v) else int(v) for v in found["n"]]),
        "drt_hit_rate": ("Float64", [None if pd.isna(v) else round(float(v), 3) for v in found["rate"]]),
        "drt_hit_rt_ms": ("Float64", [None if pd.isna(v) else round(float(v), 1) for v in found["rt"]]),
    }
    for name, (dtype, values) in columns.items():
        new = pd.array(values, dtype=dtype)
        trials[name] = trials[name].where(~matched, pd.Series(new, index=trials.index))
    return trials


def _with_attention(trials: pd.DataFrame, views: pd.DataFrame, focus: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with photo_dwell_s (sum of the call's photo views) and the focus share per panel (each panel's
    focus time over the call's total focus time)."""
    trials = trials.copy()
    keys = list(zip(trials["session_id"], trials["call_id"]))
    if len(views):
        dwell = views.groupby(["session_id", "call_id"])["dwell_s"].sum()
        trials["photo_dwell_s"] = pd.array([round(float(dwell[k]), 3) if k in dwell.index else None for k in keys],
                                           dtype="Float64")
    timed = focus.dropna(subset=["duration_s", "call_id"]) if len(focus) else focus
    if len(timed):
        per_panel = timed.groupby(["session_id", "call_id", "panel"])["duration_s"].sum()
        total = timed.groupby(["session_id", "call_id"])["duration_s"].sum()
        for panel in ("photos", "live_view", "transcript", "form"):
            values = []
            for k in keys:
                if k not in total.index or not total[k]:
                    values.append(None)
                else:
                    part = per_panel.get((k[0], k[1], panel), 0.0)
                    values.append(round(float(part) / float(total[k]), 3))
            trials[f"focus_{panel}_share"] = pd.array(values, dtype="Float64")
    return trials


def _write(table: pd.DataFrame, out_dir: Path, name: str, files: list[Path]) -> None:
    csv_path, parquet_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    # In slices of rows, so the plain copy of a study's events table never exists whole (~0.5 GB); by Arrow's string
    # kernels where they give pandas' bytes (analysis.csv_fast, issue 9).
    write_table_csv(table, csv_path, CSV_SLICE_ROWS)
    table.to_parquet(parquet_path, index=False)
    files += [csv_path, parquet_path]


def analyze(
    recordings: Path,
    out_dir: Path,
    ratings: Sequence[Path] = (),
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> AnalysisResult:
    """Analyse every session under ``recordings`` (a recordings root or one session folder) into ``out_dir``.

    Writes the tables listed in the module docstring (columns declared in :mod:`analysis.trials`,
    :mod:`analysis.summary` and :mod:`analysis.tables`; described in ``codebook.md``), ``report.html`` and plots,
    creating ``out_dir`` if needed and replacing earlier outputs. Times are seconds (3 decimals). A damaged session
    is reported, not dropped: its sound calls are still rows and its problems go to ``sessions.csv``,
    ``data_quality.csv``, the report and :attr:`AnalysisResult.problems_text`. ``ratings`` are sheets read by
    :func:`analysis.imports.read_ratings_csv` (kind from their columns); RSME sheets fill missing ratings
    (:func:`merge_rsme`). ``progress`` (optional) is called with one short line per step (a session loaded, a
    statistic computed); nothing is printed here. ``workers`` is the number of processes reading the sessions
    and fitting the models (None: two for 16 sessions / 1000 trials or more on a machine with two CPUs, else one;
    see :mod:`analysis.reading` and :func:`analysis.summary.build_summary`); unless it is 1, forked processes also
    draw the report's plots (:mod:`analysis.report_plots`) and write the events table
    (:mod:`analysis.background_write`) while the statistics run. The results do not depend on it.

    Raises :class:`AnalysisInputError` (an :class:`AnalysisError`, a ``ValueError``) when ``recordings`` is missing
    or holds no session, :class:`RatingsImportError` when a ratings sheet cannot be read (before anything is
    written), and ``OSError`` when ``out_dir`` cannot be written.
    """
    paths = find_sessions(Path(recordings))
    sheets: dict[str, list[pd.DataFrame]] = {}
    for path in ratings:
        kind = detect_kind(Path(path))
        sheets.setdefault(kind, []).append(read_ratings_csv(path, kind))
    read = read_sessions(paths, workers=workers, progress=progress)
    loaded, rows, events, changes = read.sessions, read.trials, read.events, read.form_changes
    drt, views, focus, block_rows = read.drt, read.views, read.focus, read.blocks
    instrument_quality, designed, automation_rows = read.instrument_quality, read.designed, read.automation
    del read
    drt_table = frame(drt, DRT_COLUMNS)
    views_table = frame(views, MEDIA_VIEW_COLUMNS)
    focus_table = frame(focus, FOCUS_COLUMNS)
    trials = _with_attention(_with_drt(frame(rows, TRIAL_COLUMNS), drt_table), views_table, focus_table)
    rating_quality: list[dict[str, Any]] = []
    tables: dict[str, pd.DataFrame] = {}
    for kind, frames in sheets.items():
        table = pd.concat(frames, ignore_index=True)
        for f in frames:
            source = f["source_file"].iloc[0] if len(f) else ""
            rating_quality += [{"session_id": None, "call_id": None, "record": "rating",
                                "problem": f"{source}: {n}", "handling": "repaired"} for n in f.attrs.get("notes", [])]
        if kind == "rsme":
            trials, merged = merge_rsme(trials, table)
            rating_quality += merged
        tables[f"ratings_{kind}"] = table
    quality = _quality_rows(loaded, trials) + rating_quality + instrument_quality  # after the merge
    if "ratings_nasa_tlx" in tables:
        imported, block_quality = blocks_from_tlx(trials, tables["ratings_nasa_tlx"])
        block_rows += imported
        quality += block_quality
    blocks = frame(block_rows, BLOCK_COLUMNS)
    analysed = trials[trials["practice"] != True]  # noqa: E712 (nullable boolean)
    # The report's plots and the events table's files are made by forked processes meanwhile (issue 9).
    drawer = start_plots(trials, blocks, Path(out_dir)) if workers != 1 else None
    events_table = events.frame()
    del events
    events_pending = start_write(_write, events_table, Path(out_dir), "events") if workers != 1 else None
    summary = build_summary(analysed, progress=progress, blocks=blocks, workers=workers)
    confusion = confusion_tables(analysed)
    sessions = frame([session_row(s) for s in loaded], SESSION_COLUMNS)
    quality_frame = frame(quality, QUALITY_COLUMNS)
    form_changes = frame(changes, FORM_CHANGE_COLUMNS)
    disagreement = frame(disagreement_rows(designed), DISAGREEMENT_COLUMNS)
    from analysis.automation import automation_frames  # link proposals, advice, screening (issue 11)

    automation = automation_frames(automation_rows)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress("writing tables")
    files: list[Path] = []
    for name, table in (("trials", trials), ("sessions", sessions), ("events", events_table), ("summary", summary),
                        ("confusion", confusion), ("data_quality", quality_frame), ("form_changes", form_changes),
                        ("disagreement", disagreement),
                        ("blocks", blocks), ("drt", drt_table), ("media_views", views_table), ("focus", focus_table),
                        *tables.items(), *automation.items()):
        if events_pending is not None and name == events_pending.name:
            events_pending.finish(files)
        else:
            _write(table, out_dir, name, files)
    codebook = out_dir / "codebook.md"
    codebook.write_text(render_codebook(), encoding="utf-8")
    files.append(codebook)
    result = AnalysisResult(
        sessions_loaded=len(loaded),
        sessions_with_problems={s.session_id: list(s.problems) for s in loaded if s.problems},
        trials=trials,
        sessions=sessions,
        files=files,
        summary=summary,
        confusion=confusion,
        events=events_table,
        quality=quality_frame,
        ratings=tables,
        blocks=blocks,
        drt=drt_table,
        form_changes=form_changes,
        disagreement=disagreement,
        automation=automation,
    )
    if progress is not None:
        progress("report")
    from analysis.report import write_report

    files += write_report(result, out_dir, drawn=drawer.results() if drawer is not None else None)
    return result
