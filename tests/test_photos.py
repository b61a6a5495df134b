"""Photo intake (workbench/ingest/photos.py): real phone and camera files, and synthetic edge cases.

"Upright" is proved by pixels, not by tags: each display copy is compared with a reference that does not go through
the code under test (Landscape_1's stored pixels; Portrait_2's stored pixels mirrored with numpy), as the mean
absolute difference (MAD, 0-255) after resizing both to the same size. A correct copy scores < 3; a wrong one > 30
(measured: correct 0.0-1.1, untransposed 39-85).
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.ingest.photos import (
    MIN_DECODED_SHARE,
    NormalisedPhoto,
    PhotoError,
    ensure_heif_opener,
    normalise_photo,
)

# name: (image_format, extension, exif_orientation, display size (w, h) at max_side 2048, truncated)
REAL_PHOTOS: dict[str, tuple[str, str, int, tuple[int, int], bool]] = {
    "exif_orientation_Landscape_1.jpg": ("JPEG", ".jpg", 1, (1800, 1200), False),
    "exif_orientation_Landscape_3.jpg": ("JPEG", ".jpg", 3, (1800, 1200), False),
    "exif_orientation_Landscape_6.jpg": ("JPEG", ".jpg", 6, (1800, 1200), False),
    "exif_orientation_Landscape_8.jpg": ("JPEG", ".jpg", 8, (1800, 1200), False),
    "exif_orientation_Portrait_2.jpg": ("JPEG", ".jpg", 2, (1200, 1800), False),
    "exif_orientation_Portrait_4.jpg": ("JPEG", ".jpg", 4, (1200, 1800), False),
    "exif_orientation_Portrait_5.jpg": ("JPEG", ".jpg", 5, (1200, 1800), False),
    "exif_orientation_Portrait_7.jpg": ("JPEG", ".jpg", 7, (1200, 1800), False),
    "heic_iphone8plus_arrow_irot_exif6.heic": ("HEIF", ".heic", 6, (1536, 2048), False),
    "heic_nokia_bird_burst_4images.heic": ("HEIF", ".heic", 1, (1280, 720), False),
    "heic_zPug_3_multi_image_thumbnails.heic": ("HEIF", ".heic", 1, (64, 64), False),
    # the file is named .heif, but its ftyp brand is heic (HEVC-coded), so the original is stored as .heic
    "heif_hmd_nokia8.3_5g_hdr_gps.heif": ("HEIF", ".heic", 1, (2048, 1536), False),
    "jpeg_cmyk_pil_sample_cmyk.jpg": ("JPEG", ".jpg", 1, (100, 100), False),
    "jpeg_gps_nikon_coolpix_p6000_DSCN0010.jpg": ("JPEG", ".jpg", 1, (640, 480), False),
    "jpeg_phone_jolla.jpg": ("JPEG", ".jpg", 1, (2048, 1536), False),
    "jpeg_progressive_nikon_d300_empty_gps_ifd.jpeg": ("JPEG", ".jpg", 1, (200, 133), False),
    # progressive, 8 bytes short of its end: every row still decodes, so it is accepted with the flag
    "jpeg_truncated_progressive.jpg": ("JPEG", ".jpg", 1, (100, 100), True),
    "png_16bit_rgb_128x128.png": ("PNG", ".png", 1, (128, 128), False),
    "still_test1_outdoor_fire_smoke_f000.jpg": ("JPEG", ".jpg", 1, (352, 288), False),
    "still_test1_outdoor_fire_smoke_f090.jpg": ("JPEG", ".jpg", 1, (352, 288), False),
    "still_test1_outdoor_fire_smoke_f180.jpg": ("JPEG", ".jpg", 1, (352, 288), False),
    "still_test1_outdoor_fire_smoke_f250.jpg": ("JPEG", ".jpg", 1, (352, 288), False),
    "still_test5_brush_fire_f030.jpg": ("JPEG", ".jpg", 1, (480, 272), False),
    "still_test5_brush_fire_f300.jpg": ("JPEG", ".jpg", 1, (480, 272), False),
    "still_test7_night_city_lights_negative_f300.jpg": ("JPEG", ".jpg", 1, (320, 240), False),
}


@pytest.fixture(scope="module")
def photos_dir(real_data: Path) -> Path:
    return real_data / "photos"


def _display(photo: NormalisedPhoto) -> Image.Image:
    image = Image.open(io.BytesIO(photo.display_jpeg))
    image.load()
    return image


def _pixels(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- every real file ----------------------------------------------------------------------------------------------


def test_every_real_photo_is_listed(photos_dir: Path) -> None:
    on_disk = {p.name for p in photos_dir.iterdir() if p.name != "SOURCES.md"}
    assert on_disk == set(REAL_PHOTOS), "a real photo was added or removed: give it an expected row above"


@pytest.mark.parametrize("name", sorted(REAL_PHOTOS))
def test_real_photo_normalises(photos_dir: Path, name: str) -> None:
    image_format, extension, orientation, size, truncated = REAL_PHOTOS[name]
    photo = normalise_photo((photos_dir / name).read_bytes())
    assert (photo.image_format, photo.extension, photo.exif_orientation) == (image_format, extension, orientation)
    assert (photo.width, photo.height) == size
    assert photo.truncated is truncated
    display = _display(photo)
    assert display.format == "JPEG" and display.mode == "RGB" and display.size == size
    # the display copy carries no metadata: no EXIF (so no GPS, no orientation tag), no ICC profile
    assert not display.getexif() and "exif" not in display.info and "icc_profile" not in display.info
    pixels = np.asarray(display)
    assert 5 < pixels.mean() < 250 and pixels.std() > 5, "display copy is blank"


# --- orientation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_landscape_orientations_upright(photos_dir: Path, orientation: int) -> None:
    """Reference: Landscape_1's stored pixels (orientation 1 needs no transform)."""
    reference = _pixels(Image.open(photos_dir / "exif_orientation_Landscape_1.jpg"), (300, 200))
    path = photos_dir / f"exif_orientation_Landscape_{orientation}.jpg"
    photo = normalise_photo(path.read_bytes())
    assert _mad(_pixels(_display(photo), (300, 200)), reference) < 3
    stored = Image.open(path)
    if orientation != 1:
        assert _mad(_pixels(stored, (300, 200)), reference) > 30, "the test could not tell wrong from right"
    if orientation in (6, 8):
        assert stored.size == (1200, 1800) and (photo.width, photo.height) == (1800, 1200)


@pytest.mark.parametrize("orientation", [2, 4, 5, 7])
def test_portrait_orientations_upright(photos_dir: Path, orientation: int) -> None:
    """Reference: Portrait_2's stored pixels mirrored left-right with numpy (what orientation 2 means)."""
    stored_2 = np.asarray(Image.open(photos_dir / "exif_orientation_Portrait_2.jpg").convert("RGB"))
    reference = _pixels(Image.fromarray(np.ascontiguousarray(stored_2[:, ::-1])), (200, 300))
    path = photos_dir / f"exif_orientation_Portrait_{orientation}.jpg"
    photo = normalise_photo(path.read_bytes())
    upright = _pixels(_display(photo), (200, 300))
    assert _mad(upright, reference) < 3
    assert _mad(upright[:, ::-1], reference) > 30, "a mirrored copy would have passed"
    assert upright[:75].mean() > upright[-75:].mean() + 40, "sky (bright) must be at the top, ground at the bottom"
    stored = Image.open(path)
    assert _mad(_pixels(stored, (200, 300)), reference) > 30
    if orientation in (5, 7):
        assert stored.size == (1800, 1200) and (photo.width, photo.height) == (1200, 1800)


# upright test card 64x32: quadrants red | green over blue | white (colours far apart, robust to JPEG)
_QUADRANTS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}
# how the camera stored an upright picture U for each EXIF orientation (EXIF 2.3, Orientation tag), in numpy terms
_STORE = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],
    3: lambda u: u[::-1, ::-1],
    4: lambda u: u[::-1, :],
    5: lambda u: u.transpose(1, 0, 2),
    6: lambda u: np.rot90(u, 1),
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),
    8: lambda u: np.rot90(u, -1),
}


def _upright_card() -> np.ndarray:
    card = np.zeros((32, 64, 3), np.uint8)
    card[:16, :32], card[:16, 32:] = _QUADRANTS["tl"], _QUADRANTS["tr"]
    card[16:, :32], card[16:, 32:] = _QUADRANTS["bl"], _QUADRANTS["br"]
    return card


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_synthetic_exif_orientation(orientation: int, fmt: str) -> None:
    stored = Image.fromarray(np.ascontiguousarray(_STORE[orientation](_upright_card())))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    stored.save(out, fmt, exif=exif, quality=95)
    photo = normalise_photo(out.getvalue())
    assert photo.exif_orientation == orientation and photo.image_format == fmt
    assert (photo.width, photo.height) == (64, 32)
    pixels = np.asarray(_display(photo), dtype=np.int16)
    for (y, x), key in (((8, 16), "tl"), ((8, 48), "tr"), ((24, 16), "bl"), ((24, 48), "br")):
        assert np.abs(pixels[y, x] - _QUADRANTS[key]).max() < 40, (key, pixels[y, x])


def _ruling_strength(profile: np.ndarray) -> float:
    """Mean absolute deviation of a brightness profile from its 31-px moving average: high for ruled lines."""
    smooth = np.convolve(profile, np.ones(31) / 31, mode="same")
    return float(np.abs(profile - smooth)[31:-31].mean())


def test_heic_irot_not_rotated_twice(photos_dir: Path) -> None:
    """iPhone HEIC with irot and EXIF 6: a hand-drawn arrow on ruled paper must point up, the lines run across."""
    data = (photos_dir / "heic_iphone8plus_arrow_irot_exif6.heic").read_bytes()
    photo = normalise_photo(data)
    assert photo.exif_orientation == 6
    assert (photo.width, photo.height) == (1536, 2048)  # portrait 3:4, as the phone held it
    grey = np.asarray(_display(photo).convert("L"), dtype=np.float64)
    # ruled lines run horizontally: the row-mean profile has sharp dips, the column-mean profile hardly any
    # (measured 2.28 vs 0.33)
    assert _ruling_strength(grey.mean(axis=1)) > 3 * _ruling_strength(grey.mean(axis=0))
    # the ink of the arrow has its tip at the top: narrow and centred there, wide at the bottom (the shaft's base)
    small = np.asarray(_display(normalise_photo(data, max_side=400)).convert("L"), dtype=np.float64)
    ys, xs = np.nonzero(small < 60)
    top, bottom = ys.min(), ys.max()
    band = (bottom - top) // 20
    top_xs, bottom_xs = xs[ys <= top + band], xs[ys >= bottom - band]
    assert top < 0.2 * small.shape[0] and bottom < 0.85 * small.shape[0], (top, bottom)
    assert np.ptp(top_xs) < 0.5 * np.ptp(bottom_xs), (np.ptp(top_xs), np.ptp(bottom_xs))
    assert abs(np.median(top_xs) - small.shape[1] / 2) < 0.1 * small.shape[1], "the tip is centred"
    # rotating once more for EXIF 6 (what exif_transpose would do) lays the page on its side
    twice = np.asarray(_display(photo).convert("L").transpose(Image.Transpose.ROTATE_270), dtype=np.float64)
    assert twice.shape[1] > twice.shape[0]
    assert _ruling_strength(twice.mean(axis=0)) > 3 * _ruling_strength(twice.mean(axis=1))


def test_heif_primary_image_is_used(photos_dir: Path) -> None:
    """zPug_3: the primary is image #1, greyscale 64x64 (not #0, which is colour)."""
    photo = normalise_photo((photos_dir / "heic_zPug_3_multi_image_thumbnails.heic").read_bytes())
    pixels = np.asarray(_display(photo), dtype=np.int16)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 3 and np.abs(pixels[..., 1] - pixels[..., 2]).max() <= 3
    assert pixels.std() > 10


# --- colour modes ---------------------------------------------------------------------------------------------------


def test_cmyk_jpeg_colours(photos_dir: Path) -> None:
    """Adobe CMYK JPEG: red "RED" lettering and a red bar top-left on black (Pillow's pil_sample_cmyk.jpg).

    Stored CMYK at (0, 0) is C=0, M=242, Y=230, K=0 (red); an un-inverted or naive channel drop would give cyan
    or white."""
    photo = normalise_photo((photos_dir / "jpeg_cmyk_pil_sample_cmyk.jpg").read_bytes())
    pixels = np.asarray(_display(photo), dtype=np.int16)
    r, g, b = pixels[1, 1]
    assert r > 220 and g < 50 and b < 50, (r, g, b)
    assert pixels[85:95, 5:95].max() < 40, "background below the lettering is black"
    redness = pixels[..., 0] - np.maximum(pixels[..., 1], pixels[..., 2])
    assert (redness > 150).mean() > 0.05, "the lettering is red"
    assert (pixels[..., 2] - pixels[..., 0] > 60).mean() < 0.01, "nothing turned cyan or blue"


def test_display_p3_profile_converted_to_srgb(photos_dir: Path) -> None:
    """The iPhone's Display P3 profile (taken from the real HEIC) on an orange patch: in sRGB the same colour needs
    more red and less blue (measured 213, 115, 42); without the profile the values pass through."""
    ensure_heif_opener()
    icc = Image.open(photos_dir / "heic_iphone8plus_arrow_irot_exif6.heic").info["icc_profile"]
    patch = Image.new("RGB", (16, 16), (200, 120, 60))
    out = io.BytesIO()
    patch.save(out, "PNG", icc_profile=icc)
    converted = np.asarray(_display(normalise_photo(out.getvalue())), dtype=np.int16)[8, 8]
    plain = np.asarray(_display(normalise_photo(_png(patch))), dtype=np.int16)[8, 8]
    assert np.abs(plain - (200, 120, 60)).max() <= 3
    assert converted[0] >= 208 and converted[2] <= 48 and abs(converted[1] - 115) <= 4, converted


def test_16bit_rgb_png_keeps_its_range(photos_dir: Path) -> None:
    photo = normalise_photo((photos_dir / "png_16bit_rgb_128x128.png").read_bytes())
    pixels = np.asarray(_display(photo), dtype=np.int16)
    for channel in range(3):
        values = pixels[..., channel]
        assert values.max() - values.min() > 100, f"channel {channel} is flat"
    assert 30 < pixels.mean() < 225


def test_16bit_grey_png_is_scaled_not_clipped() -> None:
    """Mode I;16 (0-65535): Pillow's own convert("L") clips everything above 255 to white."""
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    image = Image.fromarray(ramp)
    assert image.mode == "I;16"
    photo = normalise_photo(_png(image))
    row = np.asarray(_display(photo).convert("L"), dtype=np.float64)[8]
    assert row[0] < 5 and row[-1] > 250
    assert np.abs(row - ramp[8] / 257).max() < 8
    assert np.all(np.diff(row[::16]) > 0), "the ramp must rise monotonically"


def test_alpha_png_composited_over_white() -> None:
    rgba = np.zeros((20, 40, 4), np.uint8)
    rgba[:, :20] = (255, 0, 0, 255)  # opaque red
    rgba[:, 20:30] = (0, 0, 255, 128)  # half-transparent blue
    rgba[:, 30:] = (0, 0, 0, 0)  # fully transparent (black underneath): must become white, not black
    photo = normalise_photo(_png(Image.fromarray(rgba)))
    assert photo.image_format == "PNG" and photo.extension == ".png"
    pixels = np.asarray(_display(photo), dtype=np.int16)
    assert np.abs(pixels[10, 5] - (255, 0, 0)).max() < 12
    assert np.abs(pixels[10, 25] - (127, 127, 255)).max() < 12
    assert np.abs(pixels[10, 36] - (255, 255, 255)).max() < 12


def test_la_and_palette_transparency_over_white() -> None:
    la = Image.fromarray(np.dstack([np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)]))
    assert np.asarray(_display(normalise_photo(_png(la)))).min() > 240
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    palette.info["transparency"] = 1
    assert np.asarray(_display(normalise_photo(_png(palette)))).min() > 240
    palette.info.pop("transparency")
    green = np.asarray(_display(normalise_photo(_png(palette))), dtype=np.int16)[8, 8]
    assert np.abs(green - (0, 200, 0)).max() < 12


def test_gif_first_frame_and_webp() -> None:
    frames = [Image.new("RGB", (30, 20), colour) for colour in ((200, 0, 0), (0, 0, 200))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    photo = normalise_photo(out.getvalue())
    assert (photo.image_format, photo.extension, photo.width, photo.height) == ("GIF", ".gif", 30, 20)
    assert np.asarray(_display(photo), dtype=np.int16)[10, 15, 0] > 150
    out = io.BytesIO()
    frames[1].save(out, "WEBP", quality=90)
    photo = normalise_photo(out.getvalue())
    assert (photo.image_format, photo.extension) == ("WEBP", ".webp")


# --- size ---------------------------------------------------------------------------------------------------------


def test_max_side_limits_longest_side(photos_dir: Path) -> None:
    photo = normalise_photo((photos_dir / "jpeg_phone_jolla.jpg").read_bytes(), max_side=500)
    assert (photo.width, photo.height) == (500, 375)
    portrait = normalise_photo((photos_dir / "exif_orientation_Landscape_6.jpg").read_bytes(), max_side=300)
    assert (portrait.width, portrait.height) == (300, 200)
    small = normalise_photo(_png(Image.new("RGB", (40, 30), "white")), max_side=2048)
    assert (small.width, small.height) == (40, 30), "small images are not enlarged"
    with pytest.raises(ValueError):
        normalise_photo(b"irrelevant", max_side=0)


def test_decompression_bomb_refused_before_decoding() -> None:
    bomb = _png(Image.new("1", (10_000, 8_500)))  # 85 MP claimed in a ~15 kB file
    assert len(bomb) < 100_000
    with pytest.raises(PhotoError, match=r"10000x8500 px .*over the limit of 80 megapixels"):
        normalise_photo(bomb)
    # over twice Pillow's own limit (~179 MP): Pillow refuses at open, and says so through PhotoError
    with pytest.raises(PhotoError, match="far too large"):
        normalise_photo(_png(Image.new("1", (15_000, 13_000))), max_pixels=10**9)
    with pytest.raises(PhotoError, match="megapixels"):
        normalise_photo(_png(Image.new("RGB", (200, 100))), max_pixels=10_000)


# --- truncated and non-images ---------------------------------------------------------------------------------------


def test_truncated_jpeg_policy(photos_dir: Path) -> None:
    """Baseline JPEG cut short: accepted (flagged) when >= MIN_DECODED_SHARE of rows arrive, refused otherwise."""
    data = (photos_dir / "exif_orientation_Landscape_1.jpg").read_bytes()
    almost = normalise_photo(data[: int(len(data) * 0.985)])
    assert almost.truncated and (almost.width, almost.height) == (1800, 1200)
    with pytest.raises(PhotoError, match=r"cut off: only about \d+% of the photo arrived"):
        normalise_photo(data[: int(len(data) * 0.5)])
    with pytest.raises(PhotoError, match="cut off"):
        normalise_photo(data[:300])  # inside the EXIF header
    assert MIN_DECODED_SHARE == 0.9


def test_truncated_png_refused(photos_dir: Path) -> None:
    data = _png(Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)))
    with pytest.raises(PhotoError, match="PNG image is damaged or incomplete"):
        normalise_photo(data[: len(data) // 2])


def test_corrupt_png_data_refused() -> None:
    data = bytearray(_png(Image.new("RGB", (50, 50), "red")))
    start = data.index(b"IDAT") + 4
    data[start : start + 20] = zlib.compress(b"not the image")[:20]
    with pytest.raises(PhotoError, match="send the photo again"):
        normalise_photo(bytes(data))


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "detected: PDF document"),
        ("Er is brand in de Kerkstraat, ééé".encode(), "detected: text"),
        (b"<!DOCTYPE html><html><body>photo</body></html>", "detected: HTML page"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "detected: MP4/QuickTime video"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "detected: WAV audio"),
        (b"PK\x03\x04\x14\x00\x06\x00", "detected: ZIP archive"),
        (bytes(range(256)) * 4, "detected: unknown data starting with 00 01 02"),
    ],
)
def test_non_images_refused_with_what_was_detected(data: bytes, detected: str) -> None:
    with pytest.raises(PhotoError, match=f"the upload is not an image \\({detected}.*send a JPEG, PNG or HEIC photo"):
        normalise_photo(data)


def test_empty_and_unsupported_formats() -> None:
    with pytest.raises(PhotoError, match=r"empty \(0 bytes\)"):
        normalise_photo(b"")
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "BMP")
    with pytest.raises(PhotoError, match=r"image format we do not accept \(detected: BMP image\)"):
        normalise_photo(out.getvalue())
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "TIFF")
    with pytest.raises(PhotoError, match="TIFF image"):
        normalise_photo(out.getvalue())
    with pytest.raises(PhotoError, match="SVG drawing"):
        normalise_photo(b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')
    assert issubclass(PhotoError, ValueError)


# --- small things -----------------------------------------------------------------------------------------------------


def test_heif_opener_registration_is_idempotent() -> None:
    ensure_heif_opener()
    ensure_heif_opener()
    assert "HEIF" in Image.OPEN


def test_normalised_photo_validates_itself() -> None:
    with pytest.raises(ValueError, match="exif_orientation"):
        NormalisedPhoto(b"", "JPEG", 1, 1, ".jpg", 9)
    with pytest.raises(ValueError, match="extension"):
        NormalisedPhoto(b"", "JPEG", 1, 1, "jpg", 1)


# --- EXIF position and capture time (issue 3) -------------------------------------------------------------------------


def _jpeg_with_exif(gps: dict[int, object] | None, when: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    if gps is not None:
        exif.get_ifd(0x8825).update(gps)
    if when is not None:
        exif.get_ifd(0x8769).update(when)
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_exif_gps_south_west_below_sea_level_and_offset_time() -> None:
    from PIL.TiffImagePlugin import IFDRational as R

    # 33deg 51' 35.9" S, 151deg 12' 40.4" W (made up), 12.5 m below sea level; EXIF 2.31 offset time.
    data = _jpeg_with_exif(
        {1: "S", 2: (R(33), R(51), R(359, 10)), 3: "W", 4: (R(151), R(12), R(404, 10)), 5: b"\x01", 6: R(25, 2)},
        {0x9003: "2024:05:17 09:41:07", 0x9011: "+10:00"},
    )
    photo = normalise_photo(data)
    assert photo.gps == (pytest.approx(-(33 + 51 / 60 + 35.9 / 3600)), pytest.approx(-(151 + 12 / 60 + 40.4 / 3600)),
                         pytest.approx(-12.5))
    assert photo.taken_at == "2024-05-17T09:41:07+10:00"


def test_exif_without_usable_position_or_time() -> None:
    from PIL.TiffImagePlugin import IFDRational as R

    from workbench.ingest.photos import exif_position_and_time

    assert normalise_photo(_jpeg_with_exif(None)).gps is None and normalise_photo(_jpeg_with_exif(None)).taken_at == ""
    only_version = _jpeg_with_exif({0: b"\x02\x02\x00\x00"})
    assert normalise_photo(only_version).gps is None
    no_ref = _jpeg_with_exif({2: (R(52), R(5), R(0)), 4: (R(5), R(7), R(0))})
    assert normalise_photo(no_ref).gps is None, "a position without N/S and E/W is not guessed"
    out_of_range = _jpeg_with_exif({1: "N", 2: (R(152), R(0), R(0)), 3: "E", 4: (R(5), R(0), R(0))})
    assert normalise_photo(out_of_range).gps is None
    zero_division = _jpeg_with_exif({1: "N", 2: (R(0, 0), R(0), R(0)), 3: "E", 4: (R(5), R(0), R(0))})
    assert normalise_photo(zero_division).gps is None
    blank_time = _jpeg_with_exif(None, {0x9003: "0000:00:00 00:00:00"})
    assert normalise_photo(blank_time).taken_at == ""
    assert exif_position_and_time(Image.Exif()) == (None, "")
