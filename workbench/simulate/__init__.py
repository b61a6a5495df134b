"""Synthetic participants with known effects (``workbench simulate``).

Depends on ``workbench.domain`` and ``workbench.store`` only. :func:`simulate` writes complete session folders
through the store the ingest uses; :mod:`workbench.simulate.effects` reads the effects file; the generative model
is documented in :mod:`workbench.simulate.simulator`.
"""

from workbench.simulate.effects import Effects, EffectsError, MeasureEffects, load_effects, parse_effects
from workbench.simulate.simulator import SimulatedClock, latin_square_orders, simulate

__all__ = [
    "Effects",
    "EffectsError",
    "MeasureEffects",
    "SimulatedClock",
    "latin_square_orders",
    "load_effects",
    "parse_effects",
    "simulate",
]
