"""The simulated caller's spoken lines: synthesised ahead of time with espeak-ng and cached by content.

:func:`synthesise_line` writes one 48 kHz mono 16-bit WAV per (voice, text) under ``<cache>/speech/``, named by the
SHA-256 of the voice, the text and the synthesis settings, so a line is synthesised once across sessions. Without
espeak-ng (or when it fails) it returns None: the caller then stays silent and the transcript still appears.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from workbench.runner.demo_media import AUDIO_RATE, _resample

log = logging.getLogger(__name__)

WORDS_PER_MINUTE = 150
"""espeak-ng speaking rate (``-s``), words per minute."""


def speech_available() -> bool:
    """True when ``espeak-ng`` is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


def synthesise_line(text: str, voice: str, cache_dir: Path) -> Path | None:
    """The WAV (48 kHz mono int16) of ``text`` spoken with espeak-ng voice ``voice``, from the cache or made now.

    Returns None when espeak-ng is missing or fails (logged). Raises ``OSError`` when the cache cannot be written.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    key = hashlib.sha256(f"espeak-ng|{voice}|{WORDS_PER_MINUTE}|{AUDIO_RATE}|{text}".encode()).hexdigest()[:32]
    target = cache_dir / "speech" / f"{key}.wav"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw_wav = Path(tmp) / "espeak.wav"
        try:
            subprocess.run([exe, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(raw_wav), text],
                           check=True, capture_output=True, timeout=60)
            with wave.open(str(raw_wav), "rb") as src:
                channels, width, rate = src.getnchannels(), src.getsampwidth(), src.getframerate()
                raw = src.readframes(src.getnframes())
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
            log.warning("espeak-ng could not speak %r with voice %r (%s); the line stays silent", text[:40], voice, exc)
            return None
        if width != 2 or not raw:
            log.warning("espeak-ng wrote %d-byte samples for %r; the line stays silent", width, text[:40])
            return None
        samples = _resample(np.frombuffer(raw, "<i2").reshape(-1, channels).mean(axis=1).astype(np.int16), rate)
        out = Path(tmp) / "line.wav"
        with wave.open(str(out), "wb") as dst:
            dst.setnchannels(1)
            dst.setsampwidth(2)
            dst.setframerate(AUDIO_RATE)
            dst.writeframes(samples.astype("<i2").tobytes())
        os.replace(out, target)  # atomic: a concurrent runner finds either no file or a whole one
    return target


def synthesise_lines(texts: Sequence[str], voice: str, cache_dir: Path) -> list[Path] | None:
    """One WAV per line (see :func:`synthesise_line`), or None when any line cannot be synthesised."""
    paths = []
    for text in texts:
        path = synthesise_line(text, voice, cache_dir)
        if path is None:
            return None
        paths.append(path)
    return paths


def read_line(path: Path) -> np.ndarray:
    """Samples of a WAV written by :func:`synthesise_line` (48 kHz mono int16). Raises ``wave.Error``/``OSError``."""
    with wave.open(str(path), "rb") as src:
        if (src.getnchannels(), src.getsampwidth(), src.getframerate()) != (1, 2, AUDIO_RATE):
            raise wave.Error(f"{path}: expected 48 kHz mono 16-bit")
        return np.frombuffer(src.readframes(src.getnframes()), "<i2").copy()
