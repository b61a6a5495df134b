"""Maps of report locations, rendered locally as self-contained SVG (no tiles, no scripts, no remote requests).

Pure functions over domain values:

- :func:`report_locations` (events + scenario -> one :class:`ReportLocation` per call): where each report is, from
  the best source in the log: the caller's browser geolocation (``caller.geolocation``, the latest), else a photo's
  EXIF GPS (``media.photo_metadata`` with ``has_gps``), else the scenario's ``truth.lat``/``truth.lon`` (standing in
  for the network-provided caller location); urgency and address only as the dispatcher entered them.
- :func:`live_map_svg`: open and closed reports as points coloured by the dispatcher's urgency classification
  (grey until classified), for the dispatcher and the trainer.
- :func:`heat_map_svg`: a Gaussian kernel-density heat map of report locations (numpy), for the researcher.

Projection: a local equirectangular plane around the points' centre, ``x = R * dlon * cos(lat0)``,
``y = R * dlat`` (radians, ``R`` = 6,371,008.8 m, the IUGG mean Earth radius), so distances on the map are metres
to within a fraction of a percent over a county-sized area; north is up. A scale bar in km is drawn.

Shapes and units: latitudes/longitudes in degrees WGS84; plane coordinates in metres; SVG sizes in CSS px.
Errors: ``ValueError`` for a non-positive size or bandwidth; nothing else is raised for content (no points gives an
empty map saying so).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import SessionState, replay

EARTH_RADIUS_M = 6_371_008.8
"""IUGG mean Earth radius, metres."""

URGENCY_COLOURS: dict[str, str] = {"spoed": "#d7191c", "nu": "#fd8d3c", "later": "#2c7bb6", "": "#7f7f7f"}
"""Point colour by urgency (colour-blind-safe red / orange / blue; grey when not classified)."""

LOCATION_SOURCES = ("caller_geolocation", "photo_gps", "scenario")
"""Where a report's position came from, best first."""


@dataclass(frozen=True)
class ReportLocation:
    """Where one report (call) is and what the map shows about it.

    ``lat``/``lon`` degrees WGS84; ``accuracy_m`` metres (0 when unknown); ``source`` one of
    :data:`LOCATION_SOURCES`; ``urgency`` ``spoed``/``nu``/``later`` or empty; ``status`` the call's status
    (``waiting``, ``active``, ``closed``, ``done``); ``label`` shown beside the point; ``address`` free text.
    """

    call_id: str
    lat: float
    lon: float
    source: str
    accuracy_m: float
    urgency: str
    status: str
    label: str
    address: str
    session_id: str = ""

    @property
    def is_open(self) -> bool:
        """True while the report is waiting or being handled (not closed)."""
        return self.status in ("waiting", "active")


def report_locations(
    events: Sequence[ev.Event], scenario: Scenario | None = None, state: SessionState | None = None
) -> list[ReportLocation]:
    """One :class:`ReportLocation` per call of the log that has a position, in arrival order.

    Position: latest ``caller.geolocation`` > first photo with GPS > the scenario call's caller position
    (``truth.caller_lat/lon``, else its incident's ``lat/lon``; standing in for the caller location the phone
    network hands a control room, AML). Urgency and address are the
    dispatcher's own entries only, never the ground truth: the dispatcher sees this map, and the true urgency and
    address are what the intake is scored against. ``state`` may be passed when already replayed. Calls without
    any position are left out.
    """
    state = state or replay(events)
    geo: dict[str, tuple[float, float, float, str]] = {}
    for event in events:
        data, cid = event.data, event.call_id or ""
        if isinstance(data, ev.CallerGeolocation):
            geo[cid] = (data.latitude, data.longitude, data.accuracy_m, "caller_geolocation")
        elif isinstance(data, ev.MediaPhotoMetadata) and data.has_gps:
            if cid not in geo:
                geo[cid] = (data.latitude, data.longitude, 0.0, "photo_gps")
    result = []
    for call in state.calls.values():
        truth = None
        if scenario is not None and call.scenario_call_id:
            try:
                truth = scenario.call(call.scenario_call_id).truth
            except KeyError:
                truth = None
        position = geo.get(call.call_id)
        if position is None and truth is not None and truth.caller_position is not None:
            # Where this caller stands (several callers of one incident stand apart), else the incident's location.
            position = (*truth.caller_position, 0.0, "scenario")
        if position is None:
            continue
        urgency = call.urgency or (call.closed.urgency if call.closed else "")
        address = call.location or (call.closed.location if call.closed else "")
        result.append(
            ReportLocation(
                call_id=call.call_id,
                lat=position[0],
                lon=position[1],
                source=position[3],
                accuracy_m=position[2],
                urgency=urgency,
                status=call.status,
                label=call.caller_label or call.call_id,
                address=address,
                session_id=state.session_id,
            )
        )
    return result


@dataclass(frozen=True)
class Projection:
    """Local equirectangular projection around (``lat0``, ``lon0``) degrees; :meth:`to_xy` gives metres east/north."""

    lat0: float
    lon0: float

    def to_xy(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arrays of degrees -> arrays of metres east (x) and north (y) of the centre."""
        k = math.pi / 180.0
        x = EARTH_RADIUS_M * (np.asarray(lon, float) - self.lon0) * k * math.cos(self.lat0 * k)
        y = EARTH_RADIUS_M * (np.asarray(lat, float) - self.lat0) * k
        return x, y


@dataclass(frozen=True)
class _Frame:
    """Metres -> px: the plane's extent fitted into the plot box (``left``, ``top``, ``right``, ``bottom`` px)
    with equal scale on both axes, centred."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    x_min: float
    y_min: float
    scale: float  # px per metre

    def px(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.left + (x - self.x_min) * self.scale, self.height - self.bottom - (y - self.y_min) * self.scale


def _frame(x: np.ndarray, y: np.ndarray, width: int, height: int, box: tuple[int, int, int, int],
           min_extent_m: float) -> _Frame:
    left, top, right, bottom = box
    plot_w, plot_h = width - left - right, height - top - bottom
    span_x = max(float(x.max() - x.min()), min_extent_m)
    span_y = max(float(y.max() - y.min()), min_extent_m)
    scale = min(plot_w / span_x, plot_h / span_y)
    cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
    return _Frame(width, height, left, top, right, bottom, float(cx - plot_w / scale / 2),
                  float(cy - plot_h / scale / 2), scale)


def _check_size(width: int, height: int) -> None:
    if width < 100 or height < 100:
        raise ValueError(f"map size must be at least 100x100 px, got {width}x{height}")


def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{html.escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#f7f7f4"/>',
    ]


def _scale_bar(frame: _Frame) -> list[str]:
    """A scale bar of a round length (1, 2, 5 x 10^n m) about a fifth of the width, bottom left."""
    target_m = (frame.width - frame.left - frame.right) / frame.scale / 5
    exponent = 10 ** math.floor(math.log10(target_m))
    length_m = max(m * exponent for m in (1, 2, 5) if m * exponent <= target_m)
    px = length_m * frame.scale
    x0, y0 = 16, frame.height - 14
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    return [
        f'<g class="scale"><line x1="{x0}" y1="{y0}" x2="{x0 + px:.1f}" y2="{y0}" stroke="#333" stroke-width="2"/>',
        f'<line x1="{x0}" y1="{y0 - 4}" x2="{x0}" y2="{y0 + 4}" stroke="#333"/>',
        f'<line x1="{x0 + px:.1f}" y1="{y0 - 4}" x2="{x0 + px:.1f}" y2="{y0 + 4}" stroke="#333"/>',
        f'<text x="{x0 + px + 6:.1f}" y="{y0 + 4}" fill="#333">{label}</text></g>',
        f'<text x="{frame.width - 16}" y="{frame.height - 10}" text-anchor="end" fill="#555">north \u2191</text>',
    ]


def _empty(width: int, height: int, title: str, message: str) -> str:
    parts = _svg_open(width, height, title)
    parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#555">{html.escape(message)}</text>')
    return "\n".join(parts + ["</svg>"]) + "\n"


def live_map_svg(
    locations: Iterable[ReportLocation],
    *,
    width: int = 640,
    height: int = 480,
    include_closed: bool = True,
    title: str = "Reports",
) -> str:
    """SVG map of report locations: filled circles for open reports, hollow for closed ones, coloured by urgency
    (:data:`URGENCY_COLOURS`), each labelled, with an accuracy circle when the position states one, a legend and
    a scale bar. ``include_closed`` False shows open reports only. Returns the SVG document text."""
    _check_size(width, height)
    points = [p for p in locations if include_closed or p.is_open]
    if not points:
        return _empty(width, height, title, "No report locations yet")
    lat = np.array([p.lat for p in points])
    lon = np.array([p.lon for p in points])
    proj = Projection(float((lat.max() + lat.min()) / 2), float((lon.max() + lon.min()) / 2))
    x, y = proj.to_xy(lat, lon)
    header, header_bottom = _live_header(width, title, open_count=sum(p.is_open for p in points), total=len(points))
    frame = _frame(x, y, width, height, (24, int(header_bottom) + 20, 24, 40), min_extent_m=500.0)
    px, py = frame.px(x, y)
    parts = _svg_open(width, height, title)
    order = sorted(range(len(points)), key=lambda i: points[i].is_open)  # open reports drawn last (on top)
    placed: list[tuple[float, float, float, float]] = [(0, 0, width, header_bottom + 6), (0, height - 30, width, height)]
    for i in order:  # every point's own disc is taken before any label is placed
        placed.append((px[i] - 9, py[i] - 9, px[i] + 9, py[i] + 9))
    labels = {i: _short(points[i].label) for i in order}
    spots = {i: _place_label(px[i], py[i], len(labels[i]), placed, width, height) for i in reversed(order)}
    for i in order:
        p = points[i]
        colour = URGENCY_COLOURS.get(p.urgency, URGENCY_COLOURS[""])
        tip = html.escape(f"{p.label} | {p.urgency or 'not classified'} | {p.status} | {p.address} ({p.source})")
        parts.append(f'<g class="report" data-call-id="{html.escape(p.call_id)}" data-status="{p.status}">'
                     f"<title>{tip}</title>")
        if p.accuracy_m > 0:
            parts.append(f'<circle cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="{max(p.accuracy_m * frame.scale, 3):.1f}" '
                         f'fill="{colour}" fill-opacity="0.12" stroke="{colour}" stroke-opacity="0.4"/>')
        if p.is_open:
            parts.append(f'<circle cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="8" fill="{colour}" stroke="#fff" '
                         'stroke-width="2"/>')
        else:
            parts.append(f'<circle cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="6" fill="#fff" stroke="{colour}" '
                         'stroke-width="2.5"/>')
        label, spot = labels[i], spots[i]  # open reports chose their label spots first
        if spot is not None:  # no free spot: the point keeps its tooltip but gets no text
            tx, ty, anchor = spot
            parts.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" fill="#222" stroke="#f7f7f4" '
                         f'stroke-width="3" paint-order="stroke">{html.escape(label)}</text>')
        parts.append("</g>")
    parts += header
    parts += _scale_bar(frame)
    return "\n".join(parts + ["</svg>"]) + "\n"


_CHAR_PX = 7.2
"""Approximate width of one label character at font-size 12, px (for label placement only)."""


def _place_label(
    x: float, y: float, chars: int, placed: list[tuple[float, float, float, float]], width: int, height: int
) -> tuple[float, float, str] | None:
    """A free spot for a label of ``chars`` characters beside the point at (``x``, ``y``) px: right, left, then
    above or below on either side; the first whose box stays on the canvas and overlaps no box in ``placed``
    (which it joins). Returns (text x, baseline y, text-anchor) or None."""
    w, h = chars * _CHAR_PX, 14.0
    for dx, dy, anchor in ((11, 4, "start"), (-11, 4, "end"), (8, -12, "start"), (-8, -12, "end"),
                           (8, 24, "start"), (-8, 24, "end")):
        tx, ty = x + dx, y + dy
        box = (tx if anchor == "start" else tx - w, ty - 11, tx + w if anchor == "start" else tx, ty - 11 + h)
        if box[0] < 2 or box[2] > width - 2 or box[1] < 0 or box[3] > height:
            continue
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            continue
        placed.append(box)
        return tx, ty, anchor
    return None


def _short(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_TITLE_CHAR_PX = 8.6
"""Approximate width of one title character (font-size 14, weight 600), px, for fitting the title."""


def _fit(text: str, room_px: float, char_px: float) -> str:
    """``text`` shortened with an ellipsis to about ``room_px`` px (at ``char_px`` per character)."""
    return _short(text, max(4, int(room_px // char_px)))


def _title(text: str, x: float, y: float, room_px: float) -> str:
    """The map title, fitted to ``room_px``; the full title stays in the SVG's ``<title>`` (tooltip)."""
    return (f'<text class="map-title" x="{x}" y="{y}" font-size="14" font-weight="600" fill="#222">'
            f"{html.escape(_fit(text, room_px, _TITLE_CHAR_PX))}</text>")


def _live_header(width: int, title: str, *, open_count: int, total: int) -> tuple[list[str], float]:
    """Title, open/total count and the urgency legend, laid out for ``width`` px: the count beside the title when
    both fit, else on its own line; legend entries wrap onto as many rows as the width needs (at 320 px, the
    dispatcher's sidebar, the title once overlapped the count and the legend ran off the map). A title that does
    not fit is shortened with an ellipsis; the SVG's ``<title>`` keeps it whole. Returns the SVG
    parts and the y of the header's bottom edge, px."""
    count = f"{open_count} open / {total} report{'' if total == 1 else 's'}"
    count_px = len(count) * _CHAR_PX
    beside = width - 12 - 16 - count_px - 12
    parts = ['<g class="legend">']
    if len(title) * _TITLE_CHAR_PX <= beside:
        parts.insert(0, _title(title, 12, 20, beside))
        parts.append(f'<text class="map-count" x="{width - 16}" y="20" text-anchor="end" fill="#222">{count}</text>')
        y = 20.0
    else:
        parts.insert(0, _title(title, 12, 20, width - 24))
        parts.append(f'<text class="map-count" x="12" y="38" fill="#222">{count}</text>')
        y = 38.0
    rows = [("spoed", "spoed (prio 1)"), ("nu", "nu (prio 2)"), ("later", "later (prio 3)"), ("", "not classified"), (None, "closed")]
    x, y = 16.0, y + 20
    for key, label in rows:
        item_px = 24 + 7 * len(label)
        if x > 16 and x + item_px - 10 > width - 8:
            x, y = 16.0, y + 18
        if key is None:
            parts.append(f'<circle cx="{x + 5}" cy="{y - 4}" r="4.5" fill="#fff" stroke="#555" stroke-width="2"/>')
        else:
            parts.append(f'<circle cx="{x + 5}" cy="{y - 4}" r="5" fill="{URGENCY_COLOURS[key]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" fill="#222">{label}</text>')
        x += item_px
    return parts + ["</g>"], y + 6


def kernel_density(
    x: np.ndarray, y: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray, bandwidth_m: float
) -> np.ndarray:
    """Gaussian kernel density of points (``x``, ``y``, metres) on the grid ``grid_x`` (nx,) by ``grid_y`` (ny,):
    returns shape (ny, nx), reports per square metre (integrates to the number of points over an unbounded plane).
    Raises ``ValueError`` for ``bandwidth_m <= 0``."""
    if not bandwidth_m > 0:
        raise ValueError(f"bandwidth must be > 0 m, got {bandwidth_m}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    total = np.zeros((len(grid_y), len(grid_x)))
    for lo in range(0, len(x), 256):  # chunks of points keep memory at 256 * grid cells
        gx = grid_x[None, None, :] - x[lo : lo + 256, None, None]
        gy = grid_y[None, :, None] - y[lo : lo + 256, None, None]
        total += np.exp(-(gx**2 + gy**2) / (2 * bandwidth_m**2)).sum(axis=0)
    return total / (2 * math.pi * bandwidth_m**2)


def scott_bandwidth_m(x: np.ndarray, y: np.ndarray, floor_m: float = 250.0) -> float:
    """Scott's rule for a 2-D Gaussian kernel, ``n^(-1/6)`` times the mean of the axis standard deviations,
    metres, never below ``floor_m`` (one point, or points on one spot, still give a visible blob)."""
    n = len(x)
    if n < 2:
        return floor_m
    sigma = (float(np.std(x, ddof=1)) + float(np.std(y, ddof=1))) / 2
    return max(sigma * n ** (-1 / 6), floor_m)


_HEAT_STOPS = ((0.0, (255, 255, 204)), (0.35, (254, 178, 76)), (0.7, (240, 59, 32)), (1.0, (128, 0, 38)))
"""Colour ramp of the heat map (light yellow -> dark red), by density relative to the maximum."""


def _ramp(v: float) -> str:
    for (a, ca), (b, cb) in zip(_HEAT_STOPS, _HEAT_STOPS[1:]):
        if v <= b:
            t = (v - a) / (b - a)
            r, g, bl = (round(ca[i] + (cb[i] - ca[i]) * t) for i in range(3))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#800026"


def heat_map_svg(
    locations: Iterable[ReportLocation],
    *,
    width: int = 640,
    height: int = 480,
    cell_px: int = 6,
    bandwidth_m: float | None = None,
    title: str = "Report density",
) -> str:
    """SVG heat map: Gaussian kernel density (:func:`kernel_density`, bandwidth by :func:`scott_bandwidth_m` unless
    given, metres) on a grid of ``cell_px`` px cells, cells under 3% of the maximum left blank, report positions
    as small dots, a colour legend (reports per km²) and a scale bar. Returns the SVG document text."""
    _check_size(width, height)
    if cell_px < 2:
        raise ValueError(f"cell_px must be >= 2, got {cell_px}")
    points = list(locations)
    if not points:
        return _empty(width, height, title, "No report locations")
    lat = np.array([p.lat for p in points])
    lon = np.array([p.lon for p in points])
    proj = Projection(float((lat.max() + lat.min()) / 2), float((lon.max() + lon.min()) / 2))
    x, y = proj.to_xy(lat, lon)
    bw = bandwidth_m if bandwidth_m is not None else scott_bandwidth_m(x, y)
    # The legend box (168 px) sits top right when the title fits beside it, else under the subtitle (narrow maps).
    legend_beside = width >= 12 + 20 * _TITLE_CHAR_PX + 16 + 178
    top = 84 if legend_beside else 128
    frame = _frame(x, y, width, height, (24, top, 24, 40), min_extent_m=6 * bw)
    nx, ny = math.ceil(width / cell_px), math.ceil(height / cell_px)
    centres_px_x = (np.arange(nx) + 0.5) * cell_px
    centres_px_y = (np.arange(ny) + 0.5) * cell_px
    grid_x = frame.x_min + (centres_px_x - frame.left) / frame.scale
    grid_y = frame.y_min + (frame.height - frame.bottom - centres_px_y) / frame.scale
    density = kernel_density(x, y, grid_x, grid_y, bw)  # per m²
    peak = float(density.max())
    parts = _svg_open(width, height, title)
    parts.append('<g class="density" shape-rendering="crispEdges">')
    for j in range(ny):
        for i in range(nx):
            v = density[j, i] / peak if peak > 0 else 0.0
            if v >= 0.03:
                parts.append(f'<rect x="{i * cell_px}" y="{j * cell_px}" width="{cell_px}" height="{cell_px}" '
                             f'fill="{_ramp(v)}" fill-opacity="{0.35 + 0.6 * v:.2f}"/>')
    parts.append("</g>")
    px, py = frame.px(x, y)
    parts.append('<g class="points">')
    for i in range(len(points)):
        parts.append(f'<circle cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="1.8" fill="#222" fill-opacity="0.7"/>')
    parts.append("</g>")
    room = width - 12 - (178 + 8 if legend_beside else 12)
    parts.append(_title(title, 12, 20, room))
    subtitle = f"{len(points)} reports, kernel bandwidth {bw / 1000:.2f} km"
    parts.append(f'<text class="map-count" x="12" y="38" fill="#444">{html.escape(_fit(subtitle, room, _CHAR_PX))}'
                 "</text>")
    peak_km2 = peak * 1e6
    lx, ly = (width - 170, 16) if legend_beside else (20, 60)
    parts.append(f'<g class="legend"><rect x="{lx - 8}" y="{ly - 8}" width="168" height="62" fill="#fff" '
                 'fill-opacity="0.85" stroke="#ccc"/>')
    for k in range(20):
        parts.append(f'<rect x="{lx + k * 7}" y="{ly}" width="7" height="10" fill="{_ramp((k + 0.5) / 20)}"/>')
    parts.append(f'<text x="{lx}" y="{ly + 24}" fill="#222">0</text>'
                 f'<text x="{lx + 140}" y="{ly + 24}" text-anchor="end" fill="#222">{peak_km2:.2g}</text>'
                 f'<text x="{lx}" y="{ly + 40}" fill="#444">reports per square km</text></g>')
    parts += _scale_bar(frame)
    return "\n".join(parts + ["</svg>"]) + "\n"


# --- reading sessions for the ingest's map endpoints (thin adapters over the pure functions above) -----------------


def scenario_copy(session_dir: Path) -> Scenario | None:
    """The session's ``scenario.toml`` copy (media not checked), or None when it has none or it is invalid."""
    from workbench.store.scenarios import ScenarioError, parse_scenario

    path = session_dir / "scenario.toml"
    if not path.is_file():
        return None
    try:
        return parse_scenario(path.read_bytes(), str(path), session_dir, check_media=False)
    except ScenarioError:
        return None


def map_options(query: Mapping[str, str]) -> dict[str, int | bool]:
    """``width``/``height`` (px, 100..2000, default 640x480) and ``open`` (``1``: open reports only) from a
    query string. Raises ``ValueError`` naming the parameter."""
    options: dict[str, int | bool] = {}
    for name, default in (("width", 640), ("height", 480)):
        raw = query.get(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f'"{name}" must be an integer number of px, got {raw!r}') from None
        if not 100 <= value <= 2000:
            raise ValueError(f'"{name}" must be between 100 and 2000 px, got {value}')
        options[name] = value
    options["open_only"] = query.get("open", "0") in ("1", "true", "yes")
    return options


def session_map_svg(events: Sequence[ev.Event], session_dir: Path, query: Mapping[str, str]) -> str:
    """The live map of one session (``GET /api/sessions/{sid}/map.svg``); raises ``ValueError`` for a bad query."""
    opts = map_options(query)
    locations = report_locations(events, scenario_copy(session_dir))
    title = f"Reports of session {session_dir.name}" + (" (open)" if opts["open_only"] else "")
    return live_map_svg(locations, width=int(opts["width"]), height=int(opts["height"]),
                        include_closed=not opts["open_only"], title=title)


def sessions_heat_map_svg(sessions: Sequence[tuple[Sequence[ev.Event], Path]], query: Mapping[str, str]) -> str:
    """The heat map over several sessions (``GET /api/map/heat.svg?sessions=a,b``); ``sessions`` holds each
    session's events and folder. Raises ``ValueError`` for a bad query."""
    opts = map_options(query)
    locations: list[ReportLocation] = []
    for events, folder in sessions:
        locations += report_locations(events, scenario_copy(folder))
    title = f"Report density, {len(sessions)} session(s)"
    return heat_map_svg(locations, width=int(opts["width"]), height=int(opts["height"]), title=title)


def recordings_heat_map_svg(path: Path, *, width: int = 960, height: int = 720) -> tuple[str, int]:
    """The heat map of every session under ``path`` (a recordings folder, or one session folder), read from the
    files (no ingest needed): returns (SVG text, number of sessions). Unreadable log lines are skipped (``workbench
    verify`` reports them). Raises ``FileNotFoundError`` when ``path`` holds no session."""
    from workbench.store.eventlog import read_events

    if (path / "events.jsonl").is_file():
        folders = [path]
    elif path.is_dir():
        folders = sorted(p for p in path.iterdir() if (p / "events.jsonl").is_file())
    else:
        folders = []
    if not folders:
        raise FileNotFoundError(f"{path}: no sessions (folders with events.jsonl) found")
    sessions = [(read_events(folder / "events.jsonl")[0], folder) for folder in folders]
    query = {"width": str(width), "height": str(height)}
    return sessions_heat_map_svg(sessions, query), len(folders)
