"""Every option of the pipeline, the tracker, the CLI and the page, with its default: one home.

In the style of MediaPipe tasks' ``FaceLandmarkerOptions`` and human's ``config.ts``: plain
dataclasses, each field documented where it is declared. The manifest says what a model needs
(input size, thresholds, crop rule); these say what a *user* may turn. The CLI (``python -m
facelandmarks``) takes its argparse defaults from :meth:`PipelineOptions.for_stills`; the page reads
its URL parameters with :meth:`PageOptions.from_url`; the tracker and the smoother take theirs from
:class:`TrackerOptions` and :class:`OneEuroOptions`.

Standard library only: this module is copied into the page and runs under Pyodide.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

STAGES = ("detector", "parser", "landmarks")
"""The graphs of a frame's way that run on an execution provider (named in the manifest)."""

MAX_PIXELS = 100_000_000
"""Largest picture (width × height) the CLI and the page's photo mode decode: 100 MP is about 300 MB
as RGB (400 MB as RGBA in the page) plus its reduced copies. Larger ones are refused, read from the
file's header, before decoding. The CLI's ``--max-megapixels`` changes it."""


@dataclass
class PipelineOptions:
    """How :class:`~facelandmarks.pipeline.stages.FacePipeline` processes one frame."""

    detector: str | None = None
    """The manifest's detector to run, by name or by use (``"camera"``, ``"still"``). ``None``: the
    camera detector (BlazeFace short range in the default export)."""

    passes: int = 1
    """Landmark passes per detected face. Pass 1 crops from the detection; every further pass crops
    from the previous pass's landmarks (MediaPipe's landmarks→ROI rule), which centres and levels the
    crop. 2 is what stills use; the camera loop gets the same effect over time from tracking."""

    score_threshold: float | None = None
    """Drop detections scoring below this, on top of the parser's own threshold (in the manifest).
    ``None``: the parser's threshold alone."""

    max_faces: int | None = None
    """Keep at most this many detections per frame (best score first). ``None``: all of them."""

    min_face: float | None = None
    """Stills: the smallest face to look for, in pixels (its box side). When the whole frame would
    show such a face too small for the detector, overlapping tiles are searched as well (see
    :mod:`.tiling`). ``None`` or 0: the whole frame only."""

    flip_average: bool = False
    """Run each landmark crop also mirrored and average the two (FaceMesh is not exactly
    mirror-symmetric). Twice the landmark cost; needs the manifest's ``landmarks.flip_pairs``."""

    @classmethod
    def for_stills(cls, **overrides) -> "PipelineOptions":
        """The CLI's defaults and the page's photo mode: the still-image detector (full range), two
        landmark passes, mirror averaging, and tiles down to 40-px faces."""
        return replace(cls(detector="still", passes=2, flip_average=True, min_face=40.0), **overrides)

    @classmethod
    def for_camera(cls, **overrides) -> "PipelineOptions":
        """The live loop: the camera detector (short range), one pass per frame (tracking feeds the
        next frame's crop from this frame's landmarks, a second pass spread over time)."""
        return replace(cls(detector="camera", passes=1), **overrides)


@dataclass(frozen=True)
class OneEuroOptions:
    """The One-Euro filter's parameters (Casiez, Roussel, Vogel, CHI 2012), with speeds measured in
    face sizes per second. The defaults are MediaPipe's face-landmark smoother's."""

    min_cutoff: float = 0.05
    """Cutoff frequency (Hz) for a still face: lower = smoother, more lag."""

    beta: float = 80.0
    """How fast the cutoff rises with speed: higher = less lag when the face moves."""

    d_cutoff: float = 1.0
    """Cutoff frequency (Hz) of the speed estimate itself."""

    def __post_init__(self):
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0, beta >= 0")


@dataclass
class TrackerOptions:
    """How :class:`~facelandmarks.pipeline.tracking.FaceTracker` follows faces over video frames."""

    redetect_every: int = 30
    """Frames between detector runs while every face is tracked (0 = detect every frame). A lost
    face runs the detector at once regardless. Page URL: ``redetect``."""

    max_faces: int = 4
    """Faces tracked at most. Page URL: ``faces``."""

    match_iou: float = 0.3
    """A detection overlapping a track's box this much (IoU) continues that track."""

    duplicate_iou: float = 0.5
    """Two tracks overlapping this much follow one face: the younger one is dropped."""

    smoothing: bool = True
    """Smooth each track's landmarks with a One-Euro filter. Page URL: ``smooth=0`` turns it off."""

    smooth_mesh: bool = False
    """Also smooth the 468 mesh vertices (only worth it when the mesh is drawn)."""

    one_euro: OneEuroOptions = field(default_factory=OneEuroOptions)
    """The smoother's parameters."""


# The page's URL parameters that set tracker options: URL name → (field, parse).
_TRACKER_URL_PARAMS: dict[str, tuple[str, Callable[[str], object]]] = {
    "redetect": ("redetect_every", int),
    "faces": ("max_faces", int),
    "smooth": ("smoothing", lambda v: v != "0"),
}


@dataclass
class PageOptions:
    """The page's URL parameters (``index.html?name=value&...``) that are not tracker options.

    ``web/boot.js`` reads ``camera``, ``threads`` and the per-stage providers before Python starts;
    their meaning and defaults are stated here so there is one description of the page's options."""

    camera: bool = True
    """Start the camera on load (``camera=0``: don't; a photo can still be analysed)."""

    threads: int | None = None
    """wasm threads; ``None``: ONNX Runtime's own rule, one per two cores (at most 4) when the page
    is cross-origin isolated, else 1."""

    models: str | None = None
    """Which entry of ``models/index.json`` to load (``models=NAME``); ``None``: the index's
    default."""

    providers: dict[str, str] = field(default_factory=dict)
    """Per-stage execution provider overrides, ``detector=wasm&landmarks=webgl&parser=wasm``
    (``wasm``, ``webgl``, ``webgpu``); a stage not named uses the manifest's provider."""

    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    """The tracker's options (URL: ``redetect``, ``faces``, ``smooth``)."""

    @classmethod
    def from_url(cls, get: Callable[[str], str | None]) -> "PageOptions":
        """Options from URL parameters; ``get(name)`` returns the value or ``None`` when absent.
        A value that does not parse raises ``ValueError`` naming the parameter."""
        def parsed(name, parse):
            value = get(name)
            if value is None:
                return None
            try:
                return parse(value)
            except ValueError:
                raise ValueError(f"URL parameter {name}={value!r} is not valid") from None

        tracker = TrackerOptions()
        for name, (attr, parse) in _TRACKER_URL_PARAMS.items():
            value = parsed(name, parse)
            if value is not None:
                setattr(tracker, attr, value)
        camera = parsed("camera", lambda v: v != "0")
        return cls(camera=True if camera is None else camera, threads=parsed("threads", int),
                   models=get("models"),
                   providers={s: get(s) for s in STAGES if get(s)}, tracker=tracker)

