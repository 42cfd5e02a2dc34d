"""Colour: what a decoded picture's YUV values mean, and the output's limited-range BT.709.

Pictures are converted to the output's colour as they are decoded, so compositing
works on one set of levels and the encoder's tags match the pixels. Untagged
sources are read as players read them: limited range; BT.709 when HD, else BT.601.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

AVCOL_SPC_BT709 = 1
"""FFmpeg's ``AVColorSpace`` for BT.709 (PyAV names only libswscale's ``SWS_CS_*``)."""

_MATRICES: dict[int, Colorspace] = {
    AVCOL_SPC_BT709: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,  # BT.470BG (PAL)
    6: Colorspace.ITU601,  # SMPTE 170M (NTSC)
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,  # non-constant luminance
    10: Colorspace.BT2020,  # constant luminance
}
"""libswscale's matrix for each ``AVColorSpace`` it can convert from."""


@dataclass(frozen=True)
class Colour:
    """How a picture's YUV values map to RGB: the matrix and the range of the levels."""

    matrix: Colorspace
    range: ColorRange
    """``MPEG`` (limited: luma 16-235) or ``JPEG`` (full: 0-255)."""


OUTPUT = Colour(Colorspace.ITU709, ColorRange.MPEG)
"""The colour of every picture klipmedia composites and encodes."""


def _is_hd(width: int, height: int) -> bool:
    """Whether a picture is HD, which players take to mean BT.709 when it is untagged."""
    return width >= 1280 or height >= 720


def colour_of(frame: av.VideoFrame) -> Colour:
    """The colour of a decoded frame, from its tags; untagged values are guessed as players do.

    Examples
    --------
    >>> frame = av.VideoFrame(640, 360, "yuvj420p")
    >>> colour_of(frame) == Colour(Colorspace.ITU601, ColorRange.JPEG)
    True
    """
    matrix = _MATRICES.get(frame.colorspace)
    if matrix is None:
        matrix = Colorspace.ITU709 if _is_hd(frame.width, frame.height) else Colorspace.ITU601
    full = frame.color_range == ColorRange.JPEG or frame.format.name.startswith("yuvj")
    return Colour(matrix, ColorRange.JPEG if full else ColorRange.MPEG)


def tag_output(target: av.VideoFrame | av.video.codeccontext.VideoCodecContext) -> None:
    """Tag a frame or an encoder as limited-range BT.709: matrix, primaries and transfer."""
    target.colorspace = AVCOL_SPC_BT709
    target.color_primaries = ColorPrimaries.BT709
    target.color_trc = ColorTrc.BT709
    target.color_range = OUTPUT.range


def copy_tags(
    decoder: av.video.codeccontext.VideoCodecContext,
    encoder: av.video.codeccontext.VideoCodecContext,
) -> None:
    """Give ``encoder`` the colour tags of ``decoder``, so a re-encode reads as its source.

    A ``yuvj`` pixel format means full range even where the range is untagged.
    """
    encoder.colorspace = decoder.colorspace
    encoder.color_primaries = decoder.color_primaries
    encoder.color_trc = decoder.color_trc
    full = (decoder.pix_fmt or "").startswith("yuvj")
    encoder.color_range = ColorRange.JPEG if full else decoder.color_range
