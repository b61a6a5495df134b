"""Experiment designs: which block order each participant works, counterbalanced by a seeded Latin square.

Pure functions, no I/O. A scenario's blocks are either practice blocks (``practice = true``: always first, in file
order, never counterbalanced and excluded from analysis) or test blocks, whose order is counterbalanced across
participants with a Williams design (a Latin square balanced for first-order carry-over: every block follows every
other block equally often). The seed relabels the square's treatments, so different studies get different but
replayable squares; the seed and the resulting order are recorded in ``session.json`` (the ingest writes them from
``POST /api/sessions``).

References
----------
Williams, E. J. (1949). Experimental designs balanced for the estimation of residual effects of treatments.
*Australian Journal of Scientific Research, Series A*, 2(2), 149-168. https://doi.org/10.1071/CH9490149

Construction (as in Bradley, J. V. (1958). Complete counterbalancing of immediate sequential effects in a Latin
square design. *Journal of the American Statistical Association*, 53(282), 525-528): the first row is
``0, 1, n-1, 2, n-2, 3, ...``; row ``i`` adds ``i`` to every entry modulo ``n``. For even ``n`` these ``n`` rows are
balanced; for odd ``n`` no ``n``-row square is, and the ``n`` mirrored rows are appended (``2n`` rows, balanced).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

COUNTERBALANCE_METHODS = ("none", "latin_square")
"""``none``: every participant works the blocks in file order; ``latin_square``: :func:`williams_orders`."""


class DesignError(ValueError):
    """A design that cannot be applied (no blocks, an unknown participant, a bad index)."""


def williams_square(n: int) -> list[list[int]]:
    """The rows of a Williams design for ``n`` treatments ``0..n-1``: ``n`` rows for even ``n``, ``2n`` for odd
    ``n`` (each row a permutation). Raises :class:`DesignError` for ``n < 1``.

    >>> williams_square(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    if n < 1:
        raise DesignError(f"a Latin square needs at least one treatment, got n={n}")
    first = [0]
    low, high = 1, n - 1
    for j in range(1, n):
        if j % 2 == 1:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = [[(v + i) % n for v in first] for i in range(n)]
    if n % 2 == 1 and n > 1:
        rows += [list(reversed(r)) for r in rows]
    return rows


def williams_orders(block_ids: Sequence[str], seed: int) -> list[list[str]]:
    """Counterbalanced orders of ``block_ids``: the Williams square with treatments relabelled by a seeded shuffle
    (``random.Random(seed).shuffle`` of the ids, so the same seed always gives the same square). Row ``k`` is the
    order of the participant with index ``k`` (modulo the number of rows). Raises :class:`DesignError` for no ids
    or repeated ids."""
    ids = list(block_ids)
    if not ids:
        raise DesignError("no blocks to counterbalance")
    if len(set(ids)) != len(ids):
        raise DesignError(f"block ids repeat: {ids!r}")
    labels = list(ids)
    random.Random(seed).shuffle(labels)
    return [[labels[t] for t in row] for row in williams_square(len(ids))]


@dataclass(frozen=True)
class BlockRef:
    """What the design needs of a block: its id and whether it is a practice block."""

    id: str
    practice: bool = False


def participant_index(participant: str, participants: Sequence[str]) -> int:
    """0-based index of ``participant``: its position in ``participants`` when listed there; otherwise the number at
    the end of the pseudonym minus one (``P01`` -> 0, ``P12`` -> 11). Raises :class:`DesignError` when neither
    applies."""
    if participant in participants:
        return list(participants).index(participant)
    if participants:
        raise DesignError(f"participant {participant!r} is not in the design's participants ({', '.join(participants)})")
    match = re.search(r"(\d+)$", participant)
    if not match or int(match.group(1)) < 1:
        raise DesignError(
            f"cannot derive a participant index from {participant!r}: list the participants in the scenario's "
            "[design] table, pass an explicit index, or use pseudonyms ending in a number from 1 (P01, P02, ...)"
        )
    return int(match.group(1)) - 1


def block_order(blocks: Sequence[BlockRef], method: str, seed: int, index: int) -> list[str]:
    """The block order of the participant with 0-based ``index``: practice blocks first (file order), then the test
    blocks in file order (``method="none"``) or in row ``index mod rows`` of :func:`williams_orders` (``latin_square``).

    Raises :class:`DesignError` for an unknown method, a negative index or no blocks.
    """
    if method not in COUNTERBALANCE_METHODS:
        raise DesignError(f"unknown counterbalancing {method!r}; expected one of {', '.join(COUNTERBALANCE_METHODS)}")
    if index < 0:
        raise DesignError(f"participant index must be >= 0, got {index}")
    if not blocks:
        raise DesignError("no blocks")
    practice = [b.id for b in blocks if b.practice]
    test = [b.id for b in blocks if not b.practice]
    if method == "none" or len(test) <= 1:
        return practice + test
    rows = williams_orders(test, seed)
    return practice + rows[index % len(rows)]
