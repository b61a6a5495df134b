"""The columns a ratings sheet may have and their accepted spellings (English and Dutch), without pandas, so that
``workbench analyze --help`` can list them without loading the analysis stack. :mod:`analysis.imports` reads the
sheets with these tables."""

from __future__ import annotations

TLX_SUBSCALES = ("mental_demand", "physical_demand", "temporal_demand", "performance", "effort", "frustration")
"""NASA-TLX subscales (Hart, S. G., & Staveland, L. E. (1988). Development of NASA-TLX (Task Load Index): Results
of empirical and theoretical research. *Advances in Psychology*, 52, 139-183), each 0-100."""

ALIASES: dict[str, tuple[str, ...]] = {
    "participant": ("participant", "participant_id", "pp", "deelnemer", "proefpersoon", "respondent"),
    "session_id": ("session_id", "session", "sessie"),
    "scenario_call_id": ("scenario_call_id", "call", "call_id", "melding", "oproep"),
    "block_id": ("block_id", "block", "blok"),
    "rsme": ("rsme", "rsme_score", "score", "inspanning"),
    "mental_demand": ("mental_demand", "mental", "mentaal", "mentale_belasting"),
    "physical_demand": ("physical_demand", "physical", "fysiek", "lichamelijk", "fysieke_belasting"),
    "temporal_demand": ("temporal_demand", "temporal", "tijd", "tijdsdruk"),
    "performance": ("performance", "prestatie"),
    "effort": ("effort", "moeite"),
    "frustration": ("frustration", "frustratie"),
}
"""Canonical column -> accepted header spellings (compared after lower-casing and turning every run of
non-alphanumerics into ``_``)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "rsme": ("participant", "scenario_call_id", "rsme"),
    "nasa_tlx": ("participant", "block_id") + TLX_SUBSCALES,
}
"""Columns a sheet of each kind must have."""

OPTIONAL: tuple[str, ...] = ("session_id",)
"""Columns taken when present."""


def accepted_columns_text() -> str:
    """The columns each kind of ratings sheet accepts, with their spellings, as one paragraph for
    ``workbench analyze --help`` (generated from :data:`REQUIRED`, :data:`OPTIONAL` and :data:`ALIASES`, so the
    help cannot drift from what is read)."""
    def spellings(column: str) -> str:
        return "/".join(ALIASES[column])

    parts = []
    for kind, title in (("rsme", "RSME sheet"), ("nasa_tlx", "NASA-TLX sheet")):
        required = ", ".join(spellings(c) for c in REQUIRED[kind])
        optional = ", ".join(spellings(c) for c in OPTIONAL)
        parts.append(f"{title}: {required}; optional {optional}")
    return ("Accepted columns (any case; spaces or dashes for _): " + ". ".join(parts)
            + ". NASA-TLX weights: six weight_<subscale> tallies or 15 pairwise-choice columns (pair_1 ... pair_15).")
