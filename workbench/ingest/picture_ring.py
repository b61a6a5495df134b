"""Decoded pictures handed to the recorder process through shared memory instead of a pipe.

Why
---
A 640x480 ``yuv420p`` picture is 460,800 bytes. Pickled into the recorder's :class:`multiprocessing.Queue`, it is
copied out of the ``av`` frame, into the pickle, through the 64 KiB pipe in eight writes and reads, and out of the
pickle again. A py-spy profile of the recorder process at 16 H.264 callers showed its reader spending about twice as
long reading pictures from the pipe as encoding them (``docs/recording.md``). Here the picture is copied once into a
slot of a shared mapping and once out of it; only ``(slot, width, height, pts, time base)`` crosses the pipe.

Contract
--------
* **Bounded**: ``slots`` slots of ``slot_bytes`` each, fixed when the ring is made. The event loop takes a free slot
  for each picture (:meth:`PictureRing.acquire`); when none is free the picture is dropped and counted like a full
  queue (the recorder is behind). The lowest free slot is taken, so a quiet ingest touches only a few slots' pages;
  pages once touched stay with the ring until both processes let it go, so the memory held is at most ``slots``
  times the largest picture sent (29.5 MB for 64 slots of 640x480).
* **Ownership by flag**: one byte per slot, set by the ingest when it takes the slot and cleared by whoever is done
  with it (the recorder process once it has copied the picture out, or the ingest when the item never left). The
  queue's feeder thread writes the picture before it writes the message into the pipe, and the recorder reads it
  after the message arrives, so the pipe orders them.
* **Never unmapped under a writer**: :meth:`PictureRing.close` only stops the ring from giving slots and closes the
  descriptor; the mapping goes with the last reference (each queued picture holds one), so a feeder thread still
  copying a picture never writes into unmapped memory.
* **Falls back**: a picture that does not fit a slot (more bytes than ``slot_bytes``, or odd-sized) goes through the
  pipe as before. Without ``memfd_create`` (not Linux) there is no ring and every picture does.
* **No name, nothing to clean up**: the mapping is an anonymous ``memfd``; the recorder process opens it through
  ``/proc/<ingest pid>/fd/<fd>``. It is freed when both processes have closed it, ``kill -9`` included.
"""

from __future__ import annotations

import fractions
import mmap
import os
from typing import Any

import av
import numpy as np

PAGE = mmap.PAGESIZE


def time_base_of(frame: Any) -> tuple[int, int] | None:
    """An ``av`` frame's time base as ``(numerator, denominator)``, picklable; None when it has none."""
    return (frame.time_base.numerator, frame.time_base.denominator) if frame.time_base is not None else None


def stamp(frame: Any, pts: int | None, time_base: tuple[int, int] | None) -> None:
    """Give a rebuilt ``av`` frame the pts and time base (:func:`time_base_of`) of the one it was copied from."""
    frame.pts = pts
    if time_base is not None:  # PyAV refuses None; a frame without one is placed at its arrival (MediaClock)
        frame.time_base = fractions.Fraction(*time_base)


def video_frame(planes: Any, pts: int | None, time_base: tuple[int, int] | None) -> av.VideoFrame:
    """A new ``yuv420p`` ``av.VideoFrame`` from ``planes`` (``to_ndarray()``'s layout: height * 3 / 2 rows of width
    bytes, copied) with ``pts`` and ``time_base`` (:func:`stamp`); how both the pipe and the ring rebuild a picture."""
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    stamp(frame, pts, time_base)
    return frame


def yuv420p_bytes(width: int, height: int) -> int:
    """Bytes of one ``yuv420p`` picture of ``width`` x ``height`` px (both even): Y plus two quarter-size planes."""
    return width * height * 3 // 2


class RingPicture:
    """What crosses the pipe for a picture in the ring: its slot, size (px), pts and time base (``(num, den)`` or
    None). The recorder process turns it back into an ``av.VideoFrame`` with :meth:`PictureRing.read`."""

    __slots__ = ("slot", "width", "height", "pts", "time_base")

    def __init__(self, slot: int, width: int, height: int, pts: int | None,
                 time_base: tuple[int, int] | None) -> None:
        self.slot, self.width, self.height, self.pts, self.time_base = slot, width, height, pts, time_base

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return RingPicture, (self.slot, self.width, self.height, self.pts, self.time_base)


class PictureRing:
    """Fixed slots of shared memory for decoded pictures (see the module docstring). Make it in the ingest with
    :meth:`create`, open it in the recorder process with :meth:`attach` from :attr:`spec`.

    Thread use: :meth:`acquire` on one thread only (the ingest's event loop); :meth:`write` on the thread that pickles
    (the queue's feeder); :meth:`read` and :meth:`release` on any thread, once per acquired slot."""

    def __init__(self, mapping: mmap.mmap, fd: int, owner_pid: int, slots: int, slot_bytes: int) -> None:
        self._map = mapping
        self._fd = fd
        self._owner_pid = owner_pid
        self.slots = slots
        self.slot_bytes = slot_bytes
        self._data = self._flag_pages(slots)
        self._flags = memoryview(mapping)[:slots]
        self._closed = False

    @staticmethod
    def _flag_pages(slots: int) -> int:
        """Bytes before the first slot: one flag byte per slot, rounded up to whole pages (slots start aligned)."""
        return -(-slots // PAGE) * PAGE

    @classmethod
    def _size(cls, slots: int, slot_bytes: int) -> int:
        return cls._flag_pages(slots) + slots * slot_bytes

    @classmethod
    def create(cls, slots: int, slot_bytes: int) -> PictureRing | None:
        """A new ring of ``slots`` slots of ``slot_bytes`` bytes (e.g. 64 x 460,800 for 640x480 pictures: 29.5 MB,
        touched only as slots are used). None where ``os.memfd_create`` is missing. Raises ``ValueError`` for a
        non-positive size, ``OSError`` when the memory cannot be had."""
        if slots <= 0 or slot_bytes <= 0:
            raise ValueError(f"a picture ring needs slots > 0 and slot_bytes > 0, got {slots} and {slot_bytes}")
        if not hasattr(os, "memfd_create"):
            return None
        fd = os.memfd_create("workbench-pictures", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, cls._size(slots, slot_bytes))
            mapping = mmap.mmap(fd, cls._size(slots, slot_bytes))
        except OSError:
            os.close(fd)
            raise
        return cls(mapping, fd, os.getpid(), slots, slot_bytes)

    @property
    def spec(self) -> tuple[int, int, int, int]:
        """``(owner pid, fd, slots, slot_bytes)``: what :meth:`attach` needs in another process of the same user."""
        return self._owner_pid, self._fd, self.slots, self.slot_bytes

    @classmethod
    def attach(cls, spec: tuple[int, int, int, int]) -> PictureRing:
        """The ring ``spec`` names, opened in this process (Linux: through ``/proc/<pid>/fd``). Raises ``OSError``
        when its owner is gone."""
        owner_pid, fd, slots, slot_bytes = spec
        own = os.open(f"/proc/{owner_pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        try:
            mapping = mmap.mmap(own, cls._size(slots, slot_bytes))
        finally:
            os.close(own)
        return cls(mapping, -1, owner_pid, slots, slot_bytes)

    def fits(self, width: int, height: int) -> bool:
        """Whether a ``yuv420p`` picture of ``width`` x ``height`` px goes in a slot (even sizes only)."""
        return width % 2 == 0 and height % 2 == 0 and 0 < yuv420p_bytes(width, height) <= self.slot_bytes

    def acquire(self) -> int | None:
        """The lowest free slot, now taken; None when every slot is taken (the recorder is behind) or the ring is
        closed."""
        if self._closed:
            return None
        flags = self._flags
        for slot in range(self.slots):
            if not flags[slot]:
                flags[slot] = 1
                return slot
        return None

    def release(self, slot: int) -> None:
        """Give ``slot`` back (its picture was read, or never sent); nothing once the ring is closed here."""
        if not self._closed:
            self._flags[slot] = 0

    def in_use(self) -> int:
        """Slots taken now (for tests and figures)."""
        return sum(self._flags)

    def write(self, slot: int, frame: av.VideoFrame) -> RingPicture:
        """Copy ``frame`` (``yuv420p``, fitting: :meth:`fits`) into ``slot``; return what to send in its place. The
        layout is ``VideoFrame.to_ndarray()``'s: the Y plane, then U, then V, each without row padding. Raises
        ``ValueError`` once the ring is closed."""
        if self._closed:
            raise ValueError("the picture ring is closed")
        offset = self._data + slot * self.slot_bytes
        for plane in frame.planes:
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
            target = np.ndarray((plane.height, plane.width), np.uint8, buffer=self._map, offset=offset)
            target[...] = rows
            offset += plane.height * plane.width
        return RingPicture(slot, frame.width, frame.height, frame.pts, time_base_of(frame))

    def read(self, picture: RingPicture) -> av.VideoFrame:
        """The picture in ``picture.slot`` as a new ``av.VideoFrame`` with its pts and time base; the slot is free
        again afterwards."""
        try:
            planes = np.ndarray((picture.height * 3 // 2, picture.width), np.uint8, buffer=self._map,
                                offset=self._data + picture.slot * self.slot_bytes)
            return video_frame(planes, picture.pts, picture.time_base)
        finally:
            self.release(picture.slot)

    def close(self) -> None:
        """Give no more slots and close the memfd in the process that made it (safe to call twice). The mapping is
        not unmapped here: it goes with the last reference, so a thread still writing a picture stays safe."""
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
