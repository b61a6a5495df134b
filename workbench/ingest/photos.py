"""Photo intake: turn the bytes a caller uploads into an upright 8-bit RGB JPEG for display and analysis.

The original bytes are kept unchanged by whoever stores them (under :attr:`NormalisedPhoto.extension`); this module
only decides what the bytes are and makes the display copy. It does no I/O.

What the display copy gets right (DESIGN.md, photo lessons):

- Orientation. JPEG/PNG/WebP/AVIF: the EXIF ``Orientation`` tag (1-8, mirrored 2/4/5/7 included) is applied with
  :func:`PIL.ImageOps.exif_transpose`. HEIC/HEIF: pillow-heif (libheif) already applies the container's
  ``irot``/``imir`` transform, which the HEIF standard makes normative, and rewrites the EXIF tag to 1. The EXIF
  tag is therefore never applied to a HEIF (an iPhone HEIC carries ``irot`` *and* EXIF 6: both would turn it twice).
- Colour. CMYK (Adobe JPEGs included), palette, greyscale, 16-bit greyscale (``I;16``/``I``, scaled, not clipped
  to white), and alpha (``LA``/``RGBA``/``PA``/palette transparency, composited over white) all end as 8-bit RGB. An
  embedded ICC profile (Display P3 from iPhones, a CMYK press profile) is converted to sRGB, so the JPEG needs no
  profile.
- Size: the longest side is at most ``max_side`` px (Lanczos); JPEGs are decoded at a reduced DCT scale first when
  that is enough (``draft``), which makes a 12 MP phone photo cheap.
- Privacy: the display copy carries no metadata at all (no EXIF, no GPS, no ICC).

Policies, chosen deliberately:

- Formats accepted: JPEG (incl. MPO from phones), PNG, HEIC/HEIF, AVIF, WebP, GIF. Anything else (TIFF, BMP, PDF,
  video, text, ...) is refused with a message naming what was detected; Pillow is never allowed to try its other
  plug-ins on untrusted bytes (EPS, for instance, would start Ghostscript).
- Multi-image files (HEIF bursts, animated GIF/WebP): the primary image (HEIF) or the first frame.
- Size limit: images whose header claims more than ``max_pixels`` pixels are refused before any pixel is decoded
  (decompression bombs; 80 MP by default, above every phone's default resolution and below Pillow's own warning limit).
- Truncated uploads: a JPEG that stops early is decoded as far as its data goes (an end-of-image marker is appended,
  so the missing blocks decode as flat grey, without touching Pillow's global ``LOAD_TRUNCATED_IMAGES``). If at least
  :data:`MIN_DECODED_SHARE` of its rows carry picture, it is accepted with ``truncated=True`` (a progressive JPEG
  cut short loses detail, not area); otherwise it is refused with the share that arrived. Every other format that
  fails to decode completely is refused: a half-grey photo shown to a dispatcher is a confound, and the caller can
  send it again.

Errors: :class:`PhotoError` (a ``ValueError``) with a message that says what was wrong and what the caller should do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

ACCEPTED_FORMATS = ("JPEG", "PNG", "HEIF", "AVIF", "WEBP", "GIF")
"""Pillow format names :func:`normalise_photo` decodes (MPO phone JPEGs open as JPEG's sub-format)."""

DEFAULT_MAX_PIXELS = 80_000_000
"""Default decompression-bomb limit, pixels (width x height from the header). Pillow warns above ~89 MP."""

MIN_DECODED_SHARE = 0.9
"""Share of rows (0-1) a truncated JPEG must still carry for it to be accepted (with ``truncated=True``)."""

DISPLAY_JPEG_QUALITY = 90
"""JPEG quality of the display copy (Pillow scale 1-95)."""

_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "AVIF": ".avif"}


class PhotoError(ValueError):
    """The upload cannot be turned into a photo; the message says what was wrong and what to send instead."""


@dataclass(frozen=True)
class NormalisedPhoto:
    """An uploaded photo, decoded and made ready for display."""

    display_jpeg: bytes
    """Upright 8-bit sRGB baseline JPEG (quality 90, no metadata), longest side at most ``max_side`` px."""
    image_format: str
    """Format detected from the bytes (not from a file name or MIME type): ``JPEG``, ``PNG``, ``HEIF``, ``AVIF``,
    ``WEBP`` or ``GIF``. Phone JPEGs with a multi-picture (MPF) appendix report ``JPEG``."""
    width: int
    """Width of the display copy, px, after orientation."""
    height: int
    """Height of the display copy, px, after orientation."""
    extension: str
    """File extension to store the original bytes under: ``.jpg``, ``.png``, ``.heic`` (HEVC-coded HEIF), ``.heif``
    (other HEIF), ``.avif``, ``.webp`` or ``.gif``."""
    exif_orientation: int
    """EXIF Orientation of the original, 1-8 (1 when absent or invalid). For HEIF it is the value the file carried
    (pillow-heif's ``original_orientation``); the decoder already applied the matching ``irot``/``imir``."""
    truncated: bool = False
    """True when the upload was a JPEG cut short that still decoded for at least :data:`MIN_DECODED_SHARE` of its
    rows; the missing part is flat grey (baseline) or less detailed (progressive)."""
    gps: tuple[float, float, float] | None = None
    """EXIF GPS position of the original: (latitude, longitude in WGS 84 decimal degrees, south/west negative;
    altitude in metres above sea level, 0 when absent); None when the file has no usable position (a GPS block
    holding only ``GPSVersionID`` counts as none)."""
    taken_at: str = ""
    """Capture time from EXIF ``DateTimeOriginal`` (or ``DateTime``) as ISO 8601 ``YYYY-MM-DDTHH:MM:SS``, camera
    local time, with ``OffsetTimeOriginal`` appended when present; empty when absent or malformed."""

    def __post_init__(self) -> None:
        if not 1 <= self.exif_orientation <= 8:
            raise ValueError(f"exif_orientation must be 1-8, got {self.exif_orientation}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"width and height must be positive, got {self.width}x{self.height}")
        if not self.extension.startswith("."):
            raise ValueError(f"extension must start with '.', got {self.extension!r}")


def ensure_heif_opener() -> None:
    """Register pillow-heif's HEIF opener with Pillow, once; later calls do nothing.

    Pillow's plug-in registry is process-wide by design, so registration is global whichever way it is done. This
    helper keeps it out of import time (importing this module changes nothing) and checks Pillow's registry instead
    of keeping a flag of its own, so it is idempotent and safe to call before every decode.
    """
    Image.init()
    if "HEIF" not in Image.OPEN:
        from pillow_heif import register_heif_opener

        register_heif_opener()


def normalise_photo(
    data: bytes, *, max_side: int = 2048, max_pixels: int = DEFAULT_MAX_PIXELS
) -> NormalisedPhoto:
    """Decode an uploaded photo and make its upright 8-bit RGB display JPEG.

    Parameters
    ----------
    data:
        The uploaded bytes, exactly as received.
    max_side:
        Longest side of the display copy, px (>= 1). Smaller images are not enlarged.
    max_pixels:
        Largest accepted image, pixels (width x height as the file's header states); larger ones are refused
        before decoding.

    Returns
    -------
    NormalisedPhoto
        The display JPEG, its size after orientation, the detected format, the extension to store the original
        under, the original's EXIF orientation and whether a truncated JPEG was accepted.

    Raises
    ------
    PhotoError
        Empty data; bytes that are not an image (the message names what was detected, e.g. PDF, text, video);
        an image format other than :data:`ACCEPTED_FORMATS`; an image over ``max_pixels``; a damaged or truncated
        image (see the module docstring for the truncated-JPEG policy).
    ValueError
        ``max_side`` or ``max_pixels`` below 1 (a programming error, not a bad upload).
    """
    if max_side < 1 or max_pixels < 1:
        raise ValueError(f"max_side and max_pixels must be >= 1, got {max_side} and {max_pixels}")
    if not data:
        raise PhotoError("the upload is empty (0 bytes); send the photo again as a JPEG, PNG or HEIC file")

    ensure_heif_opener()
    image = _open(data, max_pixels)
    image_format = "JPEG" if image.format == "MPO" else str(image.format)
    is_heif = image_format == "HEIF"
    extension = _heif_extension(data) if is_heif else _EXTENSIONS[image_format]

    image, truncated = _load(image, data, max_side)
    # after load(): a PNG's eXIf chunk may follow its pixel data, and getexif() would decode the image unguarded
    if is_heif:
        orientation = _valid_orientation(image.info.get("original_orientation"))
    else:
        orientation = _valid_orientation(image.getexif().get(0x0112))
    gps, taken_at = exif_position_and_time(image.getexif())
    icc = image.info.get("icc_profile")
    if not is_heif:
        # HEIF: libheif applied irot/imir already (normative); the EXIF tag is informative and must not rotate again.
        image = ImageOps.exif_transpose(image)
    image = _to_base_mode(image)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    image = _to_srgb(image, icc)

    out = io.BytesIO()
    image.save(out, "JPEG", quality=DISPLAY_JPEG_QUALITY)
    return NormalisedPhoto(
        display_jpeg=out.getvalue(),
        image_format=image_format,
        width=image.width,
        height=image.height,
        extension=extension,
        exif_orientation=orientation,
        truncated=truncated,
        gps=gps,
        taken_at=taken_at,
    )


# --- decoding -----------------------------------------------------------------------------------------------------


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) with the accepted plug-ins; refuse non-images, other formats and oversized images."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning, when made an error
        raise PhotoError(f"the image is far too large to process ({exc}); send a photo of at most "
                         f"{max_pixels / 1e6:.0f} megapixels") from exc
    except Image.UnidentifiedImageError as exc:
        raise PhotoError(_not_an_image_message(data)) from exc
    except Exception as exc:  # untrusted bytes: decoders raise OSError, SyntaxError, struct.error, ValueError...
        raise PhotoError(
            f"the upload looks like a {_sniff(data) or 'picture'} file but its header is damaged or cut off "
            f"({type(exc).__name__}: {exc}); send the photo again as a JPEG, PNG or HEIC file"
        ) from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise PhotoError(f"the image has no pixels ({width}x{height}); send the photo again")
    if width * height > max_pixels:
        raise PhotoError(
            f"the image is {width}x{height} px ({width * height / 1e6:.0f} megapixels), over the limit of "
            f"{max_pixels / 1e6:.0f} megapixels (a decompression bomb or an unusually large photo); send a smaller "
            "photo, for instance at the phone camera's default resolution"
        )
    return image


def _load(image: Image.Image, data: bytes, max_side: int) -> tuple[Image.Image, bool]:
    """Decode the pixels; returns the image and whether it was a truncated JPEG accepted by the policy."""
    _draft(image, max_side)
    try:
        image.load()
        return image, False
    except Exception as exc:  # untrusted bytes, see _open
        first_error = exc
    if image.format in ("JPEG", "MPO") and "truncated" in str(first_error):
        return _load_truncated_jpeg(data, max_side, first_error), True
    raise PhotoError(
        f"the {image.format} image is damaged or incomplete and cannot be decoded "
        f"({type(first_error).__name__}: {first_error}); send the photo again"
    ) from first_error


def _draft(image: Image.Image, max_side: int) -> None:
    """JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale while the longest side stays >= ``max_side``."""
    if image.format not in ("JPEG", "MPO"):
        return
    longest = max(image.size)
    if longest > max_side:
        wanted = (-(-image.width * max_side // longest), -(-image.height * max_side // longest))
        image.draft(None, wanted)


def _load_truncated_jpeg(data: bytes, max_side: int, first_error: Exception) -> Image.Image:
    """Decode a JPEG cut short by appending an EOI marker; accept it when enough rows carry picture."""
    try:
        image = Image.open(io.BytesIO(data + b"\xff\xd9"), formats=("JPEG",))
        _draft(image, max_side)
        image.load()
    except Exception as exc:  # untrusted bytes, see _open
        raise PhotoError(
            f"the JPEG upload is cut off and cannot be decoded ({first_error}); send the photo again"
        ) from exc
    share = _decoded_row_share(image)
    if share < MIN_DECODED_SHARE:
        raise PhotoError(
            f"the JPEG upload is cut off: only about {share:.0%} of the photo arrived ({first_error}); "
            "send the photo again, on a better connection if possible"
        ) from first_error
    return image


def _decoded_row_share(image: Image.Image) -> float:
    """Share of rows above the trailing run of perfectly flat rows (what a truncated JPEG decodes the rest as)."""
    pixels = np.asarray(image)
    flat = pixels.reshape(pixels.shape[0], -1)
    is_flat = flat.max(axis=1) == flat.min(axis=1)
    picture_rows = np.flatnonzero(~is_flat)
    return 0.0 if picture_rows.size == 0 else float(picture_rows[-1] + 1) / pixels.shape[0]


# --- colour -------------------------------------------------------------------------------------------------------


def _to_base_mode(image: Image.Image) -> Image.Image:
    """Any decoded mode to 8-bit ``RGB``, ``L`` or ``CMYK``: 16-bit scaled, alpha composited over white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "1":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image).convert("RGB")
    if image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # YCbCr, LAB, HSV, ...
    return image


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``RGB``/``L``/``CMYK`` to 8-bit sRGB, through the embedded ICC profile when it fits the mode."""
    if icc:
        converted = _icc_to_srgb(image, icc)
        if converted is not None:
            return converted
    return image if image.mode == "RGB" else image.convert("RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit or 32-bit greyscale to 8-bit ``L`` by scaling (Pillow's own convert clips, turning most of it white)."""
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or (values.size and values.max() > 255):
        top = 65535.0
    else:
        top = 255.0
    scaled = np.clip(np.nan_to_num(values) * (255.0 / top), 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")


def _icc_to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert with the embedded profile to sRGB; None when the profile is unusable or does not fit the mode."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}.get(space) != image.mode:
            return None
        result = ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    return result


_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769


def exif_position_and_time(exif: Image.Exif) -> tuple[tuple[float, float, float] | None, str]:
    """``(gps, taken_at)`` from a photo's EXIF, as :attr:`NormalisedPhoto.gps` and :attr:`NormalisedPhoto.taken_at`.

    GPS (EXIF 2.32 GPS IFD): ``GPSLatitude``/``GPSLongitude`` are three rationals (degrees, minutes, seconds) with
    ``GPSLatitudeRef`` ``N``/``S`` and ``GPSLongitudeRef`` ``E``/``W``; ``GPSAltitude`` a rational in metres with
    ``GPSAltitudeRef`` 1 meaning below sea level. Positions out of range or with a missing part count as none.
    Capture time: ``DateTimeOriginal`` (0x9003, Exif IFD) ``YYYY:MM:DD HH:MM:SS``, falling back to ``DateTime``
    (0x0132, IFD0); ``OffsetTimeOriginal`` (0x9011) such as ``+02:00`` is appended. Never raises: damaged metadata
    gives ``(None, "")`` for the damaged part.
    """
    gps: tuple[float, float, float] | None = None
    try:
        ifd = exif.get_ifd(_GPS_IFD)
        lat = _dms(ifd.get(2), ifd.get(1), "S")
        lon = _dms(ifd.get(4), ifd.get(3), "W")
        if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180 and (lat, lon) != (0.0, 0.0):
            alt = float(ifd[6]) if 6 in ifd else 0.0
            if ifd.get(5) in (1, b"\x01"):
                alt = -alt
            gps = (round(lat, 7), round(lon, 7), round(alt, 2))
    except Exception:  # noqa: BLE001 - untrusted metadata: any damage means "no position"
        gps = None
    taken_at = ""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
        raw = sub.get(0x9003) or exif.get(0x0132) or ""
        raw = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        raw = raw.strip().strip("\x00")
        date, _, time = raw.partition(" ")
        parts = date.split(":") + time.split(":")
        if len(parts) == 6 and all(p.isdigit() for p in parts) and parts[0] != "0000":
            taken_at = f"{parts[0]}-{parts[1]}-{parts[2]}T{parts[3]}:{parts[4]}:{parts[5]}"
            offset = str(sub.get(0x9011) or "").strip().strip("\x00")
            if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
                taken_at += offset
    except Exception:  # noqa: BLE001 - as above
        taken_at = ""
    return gps, taken_at


def _dms(value: object, ref: object, negative: str) -> float | None:
    """Degrees from EXIF (degrees, minutes, seconds) rationals and a hemisphere reference; None when incomplete."""
    if not isinstance(value, tuple) or len(value) != 3 or ref is None:
        return None
    degrees = float(value[0]) + float(value[1]) / 60.0 + float(value[2]) / 3600.0
    if degrees != degrees:  # NaN from a 0/0 rational
        return None
    ref_text = ref.decode("ascii", "replace") if isinstance(ref, bytes) else str(ref)
    return -degrees if ref_text.strip().upper().startswith(negative) else degrees


def _valid_orientation(value: object) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _heif_extension(data: bytes) -> str:
    """``.heic`` when the ftyp box names an HEVC brand, ``.avif`` for AV1, else ``.heif``."""
    if data[4:8] != b"ftyp":
        return ".heif"
    size = int.from_bytes(data[0:4], "big")
    box = data[8 : min(max(size, 16), 64)]
    brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4) if i != 4}  # skip minor_version
    if brands & _HEVC_BRANDS:
        return ".heic"
    if brands & {b"avif", b"avis"}:
        return ".avif"
    return ".heif"


# --- telling the caller what they sent ----------------------------------------------------------------------------

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "PDF document"),
    (0, b"PK\x03\x04", "ZIP archive (or a Word/Excel/OpenDocument file)"),
    (0, b"\x1aE\xdf\xa3", "Matroska/WebM video"),
    (0, b"OggS", "Ogg audio/video"),
    (0, b"ID3", "MP3 audio"),
    (0, b"fLaC", "FLAC audio"),
    (0, b"II*\x00", "TIFF image"),
    (0, b"MM\x00*", "TIFF image"),
    (0, b"BM", "BMP image"),
    (0, b"\x00\x00\x01\x00", "Windows icon"),
    (0, b"8BPS", "Photoshop document"),
    (0, b"\xff\xd8\xff", "JPEG image"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG image"),
    (0, b"GIF8", "GIF image"),
)


def _sniff(data: bytes) -> str:
    """A short name for what the bytes look like, or "" when unknown."""
    for offset, magic, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[:4] == b"RIFF" and len(data) >= 12:
        return {b"WEBP": "WebP image", b"WAVE": "WAV audio", b"AVI ": "AVI video"}.get(data[8:12], "RIFF file")
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEVC_BRANDS or brand in (b"mif1", b"msf1", b"avif", b"avis"):
            return "HEIF image"
        return "MP4/QuickTime video"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the 4096-byte boundary is still text
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else ""
    if text and all(c.isprintable() or c in "\r\n\t\f" for c in text):
        lowered = text.lstrip().lower()
        if lowered.startswith("<svg") or ("<svg" in lowered[:1000] and lowered.startswith("<?xml")):
            return "SVG drawing"
        if lowered.startswith(("<!doctype html", "<html")):
            return "HTML page"
        return "text"
    return ""


def _not_an_image_message(data: bytes) -> str:
    kind = _sniff(data)
    if kind.endswith("image") or kind == "SVG drawing":
        if kind in ("JPEG image", "PNG image", "GIF image", "WebP image", "HEIF image"):
            return (f"the upload starts like a {kind} but is not a valid one (damaged or cut off); "
                    "send the photo again")
        return f"the upload is an image format we do not accept (detected: {kind}); send a JPEG, PNG or HEIC photo"
    detected = kind or f"unknown data starting with {data[:8].hex(' ')}"
    return f"the upload is not an image (detected: {detected}); send a JPEG, PNG or HEIC photo"
