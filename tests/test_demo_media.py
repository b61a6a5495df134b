"""Demo media the project generates itself (workbench/runner/demo_media.py): files, formats, motion, sound, caching."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from workbench.runner import demo_media
from workbench.runner.demo_media import DEMO_MEDIA_NAMES, DEMO_VOICE_TEXTS, ensure_demo_media, resolve_media

VIDEOS = ("demo_fire_video", "demo_street_video")
VOICES = ("demo_fire_voice", "demo_collision_voice")
PHOTOS = ("demo_fire_photo", "demo_collision_photo")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], float]:
    cache = tmp_path_factory.mktemp("demo-media")
    start = time.perf_counter()
    media = ensure_demo_media(cache)
    seconds = time.perf_counter() - start
    print(f"\ndemo media generated in {seconds:.1f} s")  # noqa: T201 - the brief asks to see it in the test run
    return media, seconds


@pytest.fixture(scope="module")
def media(generated: tuple[dict[str, Path], float]) -> dict[str, Path]:
    return generated[0]


def _fire_share(bgr: np.ndarray) -> float:
    """Share of pixels coloured like flame: red high, green middling to high, blue low (BGR order)."""
    b, g, r = (bgr[..., i].astype(np.int16) for i in range(3))
    return float(((r > 190) & (b < 110) & (g > 30) & (r - b > 120)).mean())


def _decode(path: Path) -> tuple[av.video.stream.VideoStream, float, list[np.ndarray]]:
    """(stream, duration in s, frames as BGR arrays). WebM stores the duration on the container only."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
        if stream.duration is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = (container.duration or 0) / av.time_base
        return stream, seconds, frames


def _check_video(path: Path) -> list[np.ndarray]:
    stream, seconds, frames = _decode(path)
    assert (stream.codec_context.width, stream.codec_context.height) == (640, 480)
    assert stream.average_rate == 15
    assert len(frames) == 24 * 15
    assert seconds >= 20
    assert 200_000 < path.stat().st_size < 5_000_000
    assert all(frame.shape == (480, 640, 3) for frame in frames)
    # every frame differs from the one before (the stamp alone guarantees that) ...
    whole = [np.abs(a.astype(np.int16) - b).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert min(whole) > 0
    # ... and the scene itself moves: below the stamp, in nearly every pair of frames
    scene = [np.abs(a[60:].astype(np.int16) - b[60:]).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert np.mean(np.array(scene) > 0.05) > 0.9, sorted(scene)[:5]
    return frames


async def _player_frame_sizes(path: Path, count: int = 4) -> list[tuple[int, int]]:
    """Play ``path`` with aiortc's MediaPlayer (as a simulated caller does) and return the first frames' sizes."""
    from aiortc.contrib.media import MediaPlayer

    player = MediaPlayer(str(path))
    assert player.video is not None
    try:
        frames = [await asyncio.wait_for(player.video.recv(), timeout=10) for _ in range(count)]
    finally:
        player.video.stop()
    return [(frame.width, frame.height) for frame in frames]


def test_names_are_exactly_the_six() -> None:
    assert DEMO_MEDIA_NAMES == (
        "demo_fire_video",
        "demo_street_video",
        "demo_fire_voice",
        "demo_collision_voice",
        "demo_fire_photo",
        "demo_collision_photo",
    )
    assert set(DEMO_VOICE_TEXTS) == set(VOICES)


def test_generation_is_fast_and_complete(generated: tuple[dict[str, Path], float]) -> None:
    media, seconds = generated
    assert set(media) == set(DEMO_MEDIA_NAMES)
    for name, path in media.items():
        assert path.is_file() and path.name.startswith(name + "."), path
    assert {media[n].suffix for n in VIDEOS} <= {".mp4", ".webm"}
    assert {media[n].suffix for n in VOICES} == {".wav"}
    assert {media[n].suffix for n in PHOTOS} == {".jpg"}
    assert seconds < 30, f"generation took {seconds:.1f} s (target < 15 s on 2 shared cores)"


@pytest.mark.parametrize("name", VIDEOS)
def test_video_decodes_with_real_motion(media: dict[str, Path], name: str) -> None:
    _check_video(media[name])
    if "libx264" in av.codecs_available:
        assert media[name].suffix == ".mp4"


def test_vp8_webm_fallback_without_libx264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_media, "_video_codec", lambda: ("libvpx", ".webm"))
    path = resolve_media("builtin:demo_street_video", tmp_path)
    assert path is not None and path.suffix == ".webm"
    _check_video(path)
    assert asyncio.run(_player_frame_sizes(path)) == [(640, 480)] * 4


def test_fire_video_shows_a_big_fire_and_thick_smoke(media: dict[str, Path]) -> None:
    _, _, frames = _decode(media["demo_fire_video"])
    shares = [_fire_share(frames[i]) for i in range(0, len(frames), 15)]  # measured 0.023 (frame 0) to 0.061
    assert min(shares) > 0.015, "flames in every second of the video"
    assert np.mean(shares[-8:]) > np.mean(shares[:2]), "the fire grows"
    assert max(shares) > 0.05
    sky = frames[len(frames) // 2][40:200].astype(np.int16)  # the sky band above the roofs, below the stamp
    dark_grey = (sky.max(axis=2) < 110) & (np.ptp(sky, axis=2) < 25)
    assert dark_grey.mean() > 0.15, "smoke covers a good part of the sky"


def test_street_video_has_no_fire_and_a_blinking_light(media: dict[str, Path]) -> None:
    _, _, frames = _decode(media["demo_street_video"])
    assert max(_fire_share(f) for f in frames[::15]) < 0.01
    # amber (BGR ~ 0,190,255) pixels come and go at 1 Hz: present in some frames, absent in others
    amber = [float(((f[..., 2] > 200) & (f[..., 1] > 140) & (f[..., 0] < 80)).mean()) for f in frames[::4]]
    assert max(amber) > 0.001 and min(amber) < max(amber) / 3


def test_aiortc_media_player_plays_the_videos(media: dict[str, Path]) -> None:
    for name in VIDEOS:
        assert asyncio.run(_player_frame_sizes(media[name])) == [(640, 480)] * 4


def _read_wav(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """((channels, bytes per sample, rate in Hz), samples as float)."""
    with wave.open(str(path), "rb") as wav:
        fmt = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float64)
    return fmt, samples


def _check_voice(path: Path) -> float:
    fmt, samples = _read_wav(path)
    assert fmt == (1, 2, 48_000)
    seconds = len(samples) / 48_000
    assert seconds > 2
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 300, f"voice is (nearly) silent: RMS {rms:.0f}"
    assert np.abs(samples).max() < 32767, "clipped"
    return seconds


@pytest.mark.parametrize("name", VOICES)
def test_voice_is_a_mono_48k_wav_with_sound(media: dict[str, Path], name: str) -> None:
    _check_voice(media[name])


def test_fire_voice_longer_than_collision_voice(media: dict[str, Path]) -> None:
    assert _check_voice(media["demo_fire_voice"]) > _check_voice(media["demo_collision_voice"]) + 2


def test_espeak_voice_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if demo_media.shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    with caplog.at_level(logging.INFO, logger="workbench.runner.demo_media"):
        path = resolve_media("builtin:demo_collision_voice", tmp_path)
    assert path is not None and "spoken by espeak-ng" in caplog.text
    assert 4 < _check_voice(path) < 12


def test_tone_fallback_when_espeak_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(demo_media.shutil, "which", lambda name, *args, **kwargs: None)
    with caplog.at_level(logging.INFO, logger="workbench.runner.demo_media"):
        fire = resolve_media("builtin:demo_fire_voice", tmp_path)
        collision = resolve_media("builtin:demo_collision_voice", tmp_path)
    assert fire is not None and collision is not None
    assert "speech-like tones (espeak-ng not available)" in caplog.text
    fire_seconds = _check_voice(fire)
    assert fire_seconds > _check_voice(collision)
    # syllable rhythm: the signal switches between sound and short silences many times
    _, samples = _read_wav(fire)
    frame_energy = np.sqrt(np.mean(samples[: len(samples) // 480 * 480].reshape(-1, 480) ** 2, axis=1))  # 10 ms
    voiced = frame_energy > 200
    assert np.count_nonzero(voiced[1:] != voiced[:-1]) > 40
    # speech band: most energy between 100 Hz and 4 kHz
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 48_000)
    assert spectrum[(freqs > 100) & (freqs < 4000)].sum() > 0.9 * spectrum.sum()


@pytest.mark.parametrize("name", PHOTOS)
def test_photo_is_a_1280x960_jpeg(media: dict[str, Path], name: str) -> None:
    image = Image.open(media[name])
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1280, 960))
    bgr = np.asarray(image)[..., ::-1]
    share = _fire_share(bgr)
    if name == "demo_fire_photo":
        assert share > 0.05, f"big flames expected, flame share {share:.3f}"
    else:
        assert share < 0.01


def test_second_call_uses_the_cache(media: dict[str, Path]) -> None:
    cache = next(iter(media.values())).parent
    before = {name: path.stat().st_mtime_ns for name, path in media.items()}
    start = time.perf_counter()
    again = ensure_demo_media(cache)
    assert time.perf_counter() - start < 1.0
    assert again == media
    assert {name: path.stat().st_mtime_ns for name, path in again.items()} == before
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in media.values()), "no temporary files"


def test_code_change_regenerates_and_removes_stale_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = resolve_media("builtin:demo_fire_photo", tmp_path)
    assert old is not None
    monkeypatch.setattr(demo_media, "_source_fingerprint", lambda: b"a later version of the generator")
    new = resolve_media("builtin:demo_fire_photo", tmp_path)
    assert new is not None and new != old and new.is_file() and not old.exists()
    assert [p.name for p in tmp_path.iterdir()] == [new.name]


def test_resolve_media(tmp_path: Path, media: dict[str, Path]) -> None:
    assert resolve_media("", tmp_path) is None
    cache = next(iter(media.values())).parent
    assert resolve_media("builtin:demo_street_video", cache) == media["demo_street_video"]
    with pytest.raises(ValueError, match=r"unknown built-in media 'builtin:demo_flood' ?; known: demo_fire_video, "):
        resolve_media("builtin:demo_flood", tmp_path)
    own = tmp_path / "own.wav"
    own.write_bytes(b"RIFF")
    assert resolve_media(str(own), tmp_path) == own
    with pytest.raises(FileNotFoundError, match=r"media file '.*missing.mp4' does not exist"):
        resolve_media(str(tmp_path / "missing.mp4"), tmp_path)
    with pytest.raises(FileNotFoundError, match="is a folder"):
        resolve_media(str(tmp_path), tmp_path)
    assert list(tmp_path.iterdir()) == [own], "resolving an unknown name or a path generates nothing"


def test_demo_photo_passes_photo_intake(media: dict[str, Path]) -> None:
    """The generated photos go through the same intake as a caller's upload."""
    from workbench.ingest.photos import normalise_photo

    photo = normalise_photo(media["demo_fire_photo"].read_bytes(), max_side=640)
    assert (photo.image_format, photo.width, photo.height) == ("JPEG", 640, 480)
    assert Image.open(io.BytesIO(photo.display_jpeg)).size == (640, 480)
