"""The caller link as a QR code, so a dispatcher (or a trainer) can hand a lab phone the link by showing it.

Rendered with segno (a maintained pure-Python QR encoder, ISO/IEC 18004): no image library, no network.
"""

from __future__ import annotations

import io

import segno


def qr_svg(url: str, *, scale: int = 6, border: int = 4) -> str:
    """An SVG document (UTF-8 text) with ``url`` as a QR code, error correction level M (15% of the symbol can be
    damaged, enough for a screen photographed at an angle), each module ``scale`` px, a quiet zone of ``border``
    modules (4 is the standard's minimum). Raises ``ValueError`` for an empty ``url``."""
    if not url:
        raise ValueError("qr_svg needs a non-empty URL")
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=scale, border=border, xmldecl=False, light="#fff",
                                               title="Caller link")
    return out.getvalue().decode("utf-8")
