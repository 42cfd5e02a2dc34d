"""Face tracks: who is where, sample after sample, with the mouth's openness.

A :class:`FaceTracker` runs the detector every ``rescan`` seconds (and at once after a
scene cut) and the face mesh on the followed faces. Each face mesh gives the crop for the
next one (so a face is followed between detections, however it moves or turns), the
face's box and its mouth openness. The mesh runs at every sample only where mouths are
wanted and two or more faces are followed (one face's mouth decides nothing), and on the
listeners of a clear speaker at every other one
(:meth:`~klipmedia.speaker.RecentSpeaker.resting`); otherwise every ``follow`` seconds,
enough to keep each track on its face, and the samples between hold the last box without
a mouth.
A detection near a track confirms it; one near no track starts a new track; a track that
two detections in a row do not confirm has left (or was a false find) and ends.
While faces are followed, BlazeFace's small-face squares (two of its three passes) run
only at every other detection: a face smaller than about 7 % of the frame width that
appears while others are followed is picked up within twice ``rescan`` (4 s instead of
2 s in speaker mode), and a small track is not counted missed by the detections between.

Examples
--------
>>> tracker = FaceTracker(BlazeFaceDetector(), FaceMesh(), rescan=0.33)  # doctest: +SKIP
>>> [face.track for face in tracker.update(0.0, frame)]  # doctest: +SKIP
[0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

import av

from klipmedia.blazeface import BlazeFaceDetector, model_planes
from klipmedia.faces import Face, FaceDetector
from klipmedia.frames import Planes
from klipmedia.landmarks import FaceMesh, Mesh, Roi

__all__ = ["FaceTracker"]

_MATCH = 0.6
"""A detection whose centre is within this many face widths of a track's confirms it."""
_DRIFT = 0.3
"""A confirmed track whose mesh centre is this many face widths off the detection's is
put back on the detection."""
_MISSES = 2
"""Detections in a row that may miss a track before it ends."""
_MOTION = 0.5
"""Seconds between two meshes of a face within which its motion is carried forward."""
_SMALL = 0.1
"""A track whose crop (1.5 face widths) is narrower than this share of the frame width
holds a face that only BlazeFace's small-face squares find (about 7 % of the width)."""


@dataclass(frozen=True)
class _Track:
    id: int
    roi: Roi
    score: float
    misses: int = 0
    face: Face | None = None
    """What the last face mesh found (None: not run yet)."""
    meshed: float = -math.inf
    """When the last face mesh ran."""
    velocity: tuple[float, float] = (0.0, 0.0)
    """The face's motion between the last two meshes, pixels per second (x, y)."""

    def at(self, time: float) -> tuple[Roi, Face | None]:
        """The crop and the face moved on by the velocity to ``time`` (no mouth)."""
        if self.face is None or math.isinf(self.meshed):
            return self.roi, None
        dt = time - self.meshed
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        moved = replace(self.face, x=self.face.x + dx, y=self.face.y + dy, mouth=None)
        return replace(self.roi, cx=self.roi.cx + dx, cy=self.roi.cy + dy), moved


class FaceTracker:
    """Follows faces in the samples of one shot; :meth:`reset` at a scene cut.

    Parameters
    ----------
    detector
        Finds faces every ``rescan`` seconds (a :class:`BlazeFaceDetector`: with its
        small-face squares only at every other scan while faces are followed).
    mesh
        The face mesh, run on the followed faces.
    rescan
        Seconds between detections.
    follow
        Seconds between face meshes on a face whose mouth is not wanted (0: every sample).
    """

    def __init__(
        self, detector: FaceDetector, mesh: FaceMesh, rescan: float, follow: float = 0.0
    ) -> None:
        self._detector = detector
        self._mesh = mesh
        self._rescan = rescan
        self._follow = follow
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_scan = -math.inf
        self._tiled = False

    def reset(self) -> None:
        """Forget every track (the next sample is a new shot)."""
        self._tracks = []
        self._last_scan = -math.inf

    def update(
        self,
        time: float,
        frame: av.VideoFrame,
        mouths: bool = True,
        resting: Collection[int] = (),
    ) -> tuple[Face, ...]:
        """The faces followed at ``time`` seconds in ``frame``, with track ids.

        ``mouths``: whether mouth openness is wanted here; it is measured (``Face.mouth``)
        only where two or more faces are followed, and not on the tracks in ``resting``
        (listeners, :meth:`~klipmedia.speaker.RecentSpeaker.resting`) unless their last
        mesh is older than ``follow``. A face not meshed at this sample keeps its last box
        (moved on), without a mouth.
        """
        if time - self._last_scan >= self._rescan:
            self._last_scan = time
            self._tracks = self._scan(frame)
        wanted = mouths and len(self._tracks) >= 2
        planes: Planes | None = None
        faces: list[Face] = []
        tracks: list[_Track] = []
        for track in self._tracks:
            roi, moved = track.at(time)
            skip = not wanted or track.id in resting
            if moved is not None and skip and time - track.meshed < self._follow:
                faces.append(moved)
                tracks.append(track)
                continue
            planes = planes or model_planes(frame)
            mesh = self._mesh.landmarks(planes, roi)
            face = _face(mesh, track)
            faces.append(face)
            tracks.append(_meshed(track, mesh, face, time))
        self._tracks = tracks
        return tuple(faces)

    def _scan(self, frame: av.VideoFrame) -> list[_Track]:
        """Tracks after a detection in ``frame``; BlazeFace's small-face squares run when
        no face is followed and otherwise at every other scan."""
        detector = self._detector
        if not isinstance(detector, BlazeFaceDetector) or not detector.tiles:
            return self._matched(detector.detect(frame))
        self._tiled = not self._tracks or not self._tiled
        small = 0.0 if self._tiled else _SMALL * frame.width
        return self._matched(detector.detect(frame, tiles=self._tiled), small)

    def _matched(self, found: list[Face], small: float = 0.0) -> list[_Track]:
        """Tracks after a detection: confirmed, missed (kept or ended) and new ones.

        ``small``: a missed track whose crop is narrower (pixels) was not searched for
        and is kept as it is.
        """
        remaining = list(found)
        tracks: list[_Track] = []
        for track in sorted(self._tracks, key=lambda t: -t.score):
            near = _nearest(track.roi, remaining)
            if near is None:
                if track.roi.side < small:
                    tracks.append(track)
                elif track.misses + 1 < _MISSES:
                    tracks.append(replace(track, misses=track.misses + 1))
                continue
            remaining.remove(near)
            detected = Roi.from_face(near)
            off = math.hypot(detected.cx - track.roi.cx, detected.cy - track.roi.cy)
            roi = detected if off > _DRIFT * detected.side else track.roi
            tracks.append(replace(track, roi=roi, score=near.score, misses=0))
        for face in remaining:
            tracks.append(_Track(self._next_id, Roi.from_face(face), face.score))
            self._next_id += 1
        return sorted(tracks, key=lambda t: t.id)


def _nearest(roi: Roi, faces: list[Face]) -> Face | None:
    """The face whose centre is nearest the crop's, if within :data:`_MATCH` face widths."""
    best: Face | None = None
    best_distance = math.inf
    for face in faces:
        distance = math.hypot(face.center_x - roi.cx, face.y + face.height / 2 - roi.cy)
        if distance < best_distance and distance <= _MATCH * max(face.width, face.height):
            best, best_distance = face, distance
    return best


def _meshed(track: _Track, mesh: Mesh, face: Face, time: float) -> _Track:
    """``track`` after a face mesh at ``time``: new crop and face, velocity from the last
    mesh if it was recent (within :data:`_MOTION` seconds)."""
    velocity = (0.0, 0.0)
    if track.face is not None and 0 < time - track.meshed <= _MOTION:
        dt = time - track.meshed
        velocity = (
            (face.center_x - track.face.center_x) / dt,
            (face.y + face.height / 2 - track.face.y - track.face.height / 2) / dt,
        )
    return replace(track, roi=mesh.roi(), face=face, meshed=time, velocity=velocity)


def _face(mesh: Mesh, track: _Track) -> Face:
    x, y, width, height = mesh.box()
    return Face(x, y, width, height, track.score, track=track.id, mouth=mesh.mouth_openness)
