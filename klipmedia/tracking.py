"""Face tracks: who is where, sample after sample, with the mouth's openness.

A :class:`FaceTracker` runs the detector every ``rescan`` seconds (and at once after a
scene cut) and the face mesh on every followed face at every sample. Each face mesh gives
the crop for the next sample (so a face is followed between detections, however it moves
or turns), the face's box and its mouth openness.
A detection near a track confirms it; one near no track starts a new track; a track that
two detections in a row do not confirm has left (or was a false find) and ends.

Examples
--------
>>> tracker = FaceTracker(BlazeFaceDetector(), FaceMesh(), rescan=0.33)  # doctest: +SKIP
>>> [face.track for face in tracker.update(0.0, frame)]  # doctest: +SKIP
[0, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import av

from klipmedia.blazeface import model_planes
from klipmedia.faces import Face, FaceDetector
from klipmedia.landmarks import FaceMesh, Mesh, Roi

__all__ = ["FaceTracker"]

_MATCH = 0.6
"""A detection whose centre is within this many face widths of a track's confirms it."""
_DRIFT = 0.3
"""A confirmed track whose mesh centre is this many face widths off the detection's is
put back on the detection."""
_MISSES = 2
"""Detections in a row that may miss a track before it ends."""


@dataclass(frozen=True)
class _Track:
    id: int
    roi: Roi
    score: float
    misses: int = 0


class FaceTracker:
    """Follows faces in the samples of one shot; :meth:`reset` at a scene cut.

    Parameters
    ----------
    detector
        Finds faces every ``rescan`` seconds.
    mesh
        The face mesh run on every followed face at every sample.
    rescan
        Seconds between detections.
    """

    def __init__(self, detector: FaceDetector, mesh: FaceMesh, rescan: float) -> None:
        self._detector = detector
        self._mesh = mesh
        self._rescan = rescan
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_scan = -math.inf

    def reset(self) -> None:
        """Forget every track (the next sample is a new shot)."""
        self._tracks = []
        self._last_scan = -math.inf

    def update(self, time: float, frame: av.VideoFrame) -> tuple[Face, ...]:
        """The faces followed at ``time`` seconds in ``frame``, with track ids and mouths."""
        if time - self._last_scan >= self._rescan:
            self._last_scan = time
            self._tracks = self._matched(self._detector.detect(frame))
        if not self._tracks:
            return ()
        planes = model_planes(frame)
        faces: list[Face] = []
        tracks: list[_Track] = []
        for track in self._tracks:
            mesh = self._mesh.landmarks(planes, track.roi)
            faces.append(_face(mesh, track))
            tracks.append(replace(track, roi=mesh.roi()))
        self._tracks = tracks
        return tuple(faces)

    def _matched(self, found: list[Face]) -> list[_Track]:
        """Tracks after a detection: confirmed, missed (kept or ended) and new ones."""
        remaining = list(found)
        tracks: list[_Track] = []
        for track in sorted(self._tracks, key=lambda t: -t.score):
            near = _nearest(track.roi, remaining)
            if near is None:
                if track.misses + 1 < _MISSES:
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


def _face(mesh: Mesh, track: _Track) -> Face:
    x, y, width, height = mesh.box()
    return Face(x, y, width, height, track.score, track=track.id, mouth=mesh.mouth_openness)
