"""What `predict` reads and writes besides the model: grey image files of any size, and seismic sections in
SEG-Y (segyio, Equinor's reader): a 2-D line, or an inline, crossline or time slice of a 3-D volume, read
alone (the volume is never loaded whole), and written back with the input's headers.

Amplitudes become 8-bit grey as the competition's images look (zero amplitude mid-grey): symmetric clipping at
the 99th percentile of |amplitude| over the section, then a linear map of [-clip, clip] onto [0, 255]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import PipelineError
from pipeline.fileio import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
CLIP_PERCENTILE = 99.0


def image_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"--images {folder} is not a folder; pass a folder of PNG/JPEG/TIFF images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PipelineError(f"{folder} holds no PNG, JPEG or TIFF image; put the images there (any size, 8-bit grey)")
    return files


def read_grey(path: Path) -> np.ndarray:
    """An 8-bit grey image as uint8 (H,W); RGB with R = G = B (the competition's PNGs) is grey too."""
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise PipelineError(f"{path} is not a readable image ({type(error).__name__}); replace it or move it out of the folder") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raise PipelineError(f"{path} is a {'16' if image.mode.startswith('I;16') else '32'}-bit image; predict reads 8-bit grey: "
                            "scale it to 0-255 (or give the section as SEG-Y with --segy, which is scaled for you)")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGB", "RGBA"):
        array = np.asarray(image)[..., :3]
        if not (np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2])):
            raise PipelineError(f"{path} is a colour image (R, G and B differ); the model reads grey seismic images: convert it to grey first")
        return np.ascontiguousarray(array[..., 0])
    if image.mode in ("L", "LA"):
        return np.asarray(image)[..., 0] if image.mode == "LA" else np.asarray(image)
    raise PipelineError(f"{path} has image mode {image.mode}; predict reads 8-bit grey (or R = G = B) images: convert it")


def to_grey(section: np.ndarray) -> tuple[np.ndarray, float]:
    """Amplitudes (H,W) -> (uint8 grey (H,W), the clip amplitude)."""
    finite = np.isfinite(section)
    if not finite.all():
        raise PipelineError(f"the section holds {int((~finite).sum())} NaN or infinite samples; fix the SEG-Y file")
    clip = float(np.percentile(np.abs(section), CLIP_PERCENTILE))
    if clip == 0.0:
        return np.full(section.shape, 128, np.uint8), 0.0
    grey = np.clip(section / clip, -1.0, 1.0) * 127.5 + 127.5
    return np.round(grey).astype(np.uint8), clip


def _segyio():
    try:
        import segyio
    except ImportError:
        raise PipelineError("reading SEG-Y needs segyio: pip install segyio (it is in requirements.txt)") from None
    return segyio


def read_segy(path: Path, inline: int | None = None, crossline: int | None = None, time_slice: int | None = None) -> tuple[np.ndarray, dict]:
    """A section of amplitudes as (H,W) float32, rows = samples (time or depth, downwards) and columns = traces
    (for a time slice: rows = inlines, columns = crosslines), and where its traces live in the file."""
    segyio = _segyio()
    path = Path(path)
    chosen = [name for name, value in (("inline", inline), ("crossline", crossline), ("time_slice", time_slice)) if value is not None]
    if len(chosen) > 1:
        raise PipelineError(f"choose one of --inline, --crossline, --time-slice, not {' and '.join(chosen)}")
    if not path.is_file():
        raise PipelineError(f"SEG-Y file {path} does not exist")
    try:
        if not chosen:  # a 2-D line: every trace, in file order
            with segyio.open(str(path), "r", ignore_geometry=True) as f:
                section = np.stack([np.asarray(trace, np.float32) for trace in f.trace]).T if f.tracecount else np.zeros((0, 0))
                return section, {"kind": "line", "traces": list(range(f.tracecount))}
        with segyio.open(str(path), "r") as f:
            if inline is not None:
                if inline not in f.ilines:
                    raise PipelineError(f"{path} has no inline {inline} (inlines {f.ilines[0]}..{f.ilines[-1]})")
                position = int(np.flatnonzero(f.ilines == inline)[0])
                section = np.asarray(f.iline[inline], np.float32).T
                traces = [position * len(f.xlines) + i for i in range(len(f.xlines))] if f.sorting == segyio.TraceSortingFormat.INLINE_SORTING else None
                return section, {"kind": "inline", "number": inline, "traces": traces or _slice_traces(f, segyio.TraceField.INLINE_3D, inline)}
            if crossline is not None:
                if crossline not in f.xlines:
                    raise PipelineError(f"{path} has no crossline {crossline} (crosslines {f.xlines[0]}..{f.xlines[-1]})")
                section = np.asarray(f.xline[crossline], np.float32).T
                return section, {"kind": "crossline", "number": crossline, "traces": _slice_traces(f, segyio.TraceField.CROSSLINE_3D, crossline)}
            if not 0 <= time_slice < len(f.samples):
                raise PipelineError(f"{path} has {len(f.samples)} samples per trace; --time-slice must lie in 0..{len(f.samples) - 1}")
            section = np.asarray(f.depth_slice[time_slice], np.float32)
            return section, {"kind": "time_slice", "number": time_slice, "traces": None}
    except PipelineError:
        raise
    except (RuntimeError, OSError, ValueError) as error:
        hint = " (a 3-D slice needs inline/crossline numbers in the trace headers, bytes 189/193)" if chosen else ""
        raise PipelineError(f"{path} cannot be read as SEG-Y ({error}){hint}") from None


def _slice_traces(f, field, number: int) -> list[int]:
    """The file's trace indices whose header `field` equals `number`, in file order."""
    return [i for i in range(f.tracecount) if f.header[i][field] == number]


def write_segy_like(source: Path, target: Path, section: np.ndarray, where: dict) -> None:
    """Write `section` (H,W) as SEG-Y with the source's text and binary headers and the headers of the traces
    it came from (a time slice: one one-sample trace per pixel, headers of the volume's traces), float32."""
    segyio = _segyio()
    traces = where["traces"]
    with segyio.open(str(source), "r", ignore_geometry=True) as src:
        if where["kind"] == "time_slice":
            columns = section.reshape(-1, 1)  # one sample per trace, volume trace order (inline-major)
            headers = range(src.tracecount)
            samples = [float(src.samples[where["number"]])]
        else:
            columns = section.T  # trace after trace
            headers = traces
            samples = list(src.samples)
        spec = segyio.spec()
        spec.format = 5  # IEEE float
        spec.samples = samples
        spec.tracecount = len(columns)
        spec.ilines, spec.xlines, spec.sorting = None, None, None
        with atomic_path(target) as tmp:
            with segyio.create(str(tmp), spec) as dst:
                dst.text[0] = src.text[0]
                binary = dict(src.bin)
                binary[segyio.BinField.Format] = 5
                binary[segyio.BinField.Samples] = len(samples)
                dst.bin.update(binary)
                for i, (index, column) in enumerate(zip(headers, columns)):
                    header = dict(src.header[index])
                    header[segyio.TraceField.TRACE_SAMPLE_COUNT] = len(samples)
                    dst.header[i] = header
                    dst.trace[i] = np.ascontiguousarray(column, np.float32)
