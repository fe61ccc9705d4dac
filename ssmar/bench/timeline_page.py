"""``ssmar timeline``'s HTML page: one self-contained file (inline SVG, previews as data URIs, no script).

One lane per class that has a segment or comes near the threshold: that class's probability as a
curve, its segments as bars (hover: class, times, score). Above the lanes the best class's
probability with the threshold; below, every segment with a preview frame.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from ssmar.engine.timeline import TimelineResult, TimelineSettings
from ssmar.runtime.io import save_text

WIDTH, LEFT, LANE, CURVE = 1100, 190, 34, 90
MAX_POINTS = 1500
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:nth-child(2),th:nth-child(2){text-align:left}svg{display:block;margin:1em 0}
.seg{fill-opacity:.75}.seg:hover{fill-opacity:1;stroke:#000}.note{color:#555}"""
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def write_timeline_page(result: TimelineResult, settings: TimelineSettings, fps: float, class_names: list[str],
                        source: str, output: str | Path) -> Path:
    output = Path(output)
    title = f"ssmar timeline of {Path(source).name}"
    summary = result.summary()
    facts = (f"{result.frames} frames{f' at {fps:g} fps' if fps > 0 else ''}, {result.windows} windows of "
             f"{'/'.join(map(str, settings.lengths))} frames every {settings.stride}, rule <b>{settings.rule}</b>, threshold "
             f"{settings.threshold:g}; {len(result.segments)} segments; a person in "
             f"{100 * (summary['person_found'] or 0):.0f}% of the frames; {summary['frames_per_second']} frames/s.")
    parts = [f"<p class=\"note\">{facts}</p>", _timeline_svg(result, settings, fps, class_names),
             "<h2>Segments</h2>", _segment_table(result, fps, class_names)]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><h1>{_e(title)}</h1>\n{''.join(parts)}\n</body></html>\n")
    save_text(page, output)
    return output


def _lanes(result: TimelineResult, settings: TimelineSettings, class_count: int) -> list[int]:
    shown = {segment.class_id for segment in result.segments}
    if result.curve is not None:
        near = np.flatnonzero(result.curve.max(axis=0).astype(np.float32) >= 0.8 * settings.threshold)
        shown.update(int(c) for c in near)
    return sorted(shown) if shown else list(range(min(class_count, 5)))


def _timeline_svg(result: TimelineResult, settings: TimelineSettings, fps: float, class_names: list[str]) -> str:
    lanes = _lanes(result, settings, len(class_names))
    span = max(result.frames, 1)
    plot = WIDTH - LEFT - 10
    height = CURVE + LANE * len(lanes) + 40

    def x(frame: float) -> float:
        return LEFT + plot * frame / span

    def when(frame: int) -> str:
        return f"{frame / fps:.2f} s" if fps > 0 else f"frame {frame}"

    out = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" "
           f"viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline\">",
           f"<text x=\"4\" y=\"{CURVE / 2:.0f}\" font-size=\"12\">best class probability</text>",
           f"<rect x=\"{LEFT}\" y=\"4\" width=\"{plot}\" height=\"{CURVE - 12}\" fill=\"#fafafa\" stroke=\"#ddd\"/>"]
    if result.curve is not None:
        frames, curve = _downsample(result.curve_frames, result.curve.astype(np.float32))
        top = np.where(_downsample(result.curve_frames, result.background.astype(np.float32))[1] > 0.5, 0.0,
                       curve.max(axis=1))
        out.append(_polyline([x(f) for f in frames], [4 + (CURVE - 12) * (1 - v) for v in top], "#333"))
        y = 4 + (CURVE - 12) * (1 - settings.threshold)
        out.append(f"<line x1=\"{LEFT}\" x2=\"{LEFT + plot}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\" stroke=\"#d62728\" "
                   f"stroke-dasharray=\"4 3\"><title>threshold {settings.threshold:g}</title></line>")
    for row, cls in enumerate(lanes):
        top_y = CURVE + row * LANE
        colour = COLOURS[cls % len(COLOURS)]
        out.append(f"<text x=\"4\" y=\"{top_y + LANE * 0.65:.0f}\" font-size=\"12\">{_e(class_names[cls][:28])}</text>"
                   f"<rect x=\"{LEFT}\" y=\"{top_y}\" width=\"{plot}\" height=\"{LANE - 4}\" fill=\"#f6f6f6\"/>")
        if result.curve is not None:
            out.append(_polyline([x(f) for f in frames], [top_y + (LANE - 4) * (1 - v) for v in curve[:, cls]],
                                 colour, opacity=0.5))
        for segment in (s for s in result.segments if s.class_id == cls):
            out.append(f"<rect class=\"seg\" x=\"{x(segment.start):.1f}\" y=\"{top_y + 2}\" "
                       f"width=\"{max(1.0, x(segment.end) - x(segment.start)):.1f}\" height=\"{LANE - 8}\" "
                       f"fill=\"{colour}\"><title>{_e(class_names[cls])}: {when(segment.start)} - "
                       f"{when(segment.end)}, score {segment.score:.2f}</title></rect>")
    axis_y = CURVE + LANE * len(lanes) + 14
    for tick in np.linspace(0, span, 9):
        out.append(f"<text x=\"{x(tick):.1f}\" y=\"{axis_y}\" font-size=\"11\" text-anchor=\"middle\">"
                   f"{_e(when(int(tick)))}</text>")
    out.append("</svg>")
    return "".join(out)


def _downsample(frames: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`MAX_POINTS` points, each the maximum of its group (peaks stay visible)."""
    if len(frames) <= MAX_POINTS:
        return frames, values
    groups = np.array_split(np.arange(len(frames)), MAX_POINTS)
    return (np.array([frames[g].mean() for g in groups]), np.stack([values[g].max(axis=0) for g in groups]))


def _polyline(xs: Any, ys: Any, colour: str, opacity: float = 1.0) -> str:
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
    return (f"<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\" "
            f"stroke-opacity=\"{opacity}\"/>")


def _segment_table(result: TimelineResult, fps: float, class_names: list[str]) -> str:
    if not result.segments:
        return "<p>No micro-action segments were found.</p>"
    previews = bool(result.previews)  # video input only
    rows = []
    for index, segment in enumerate(result.segments):
        row = segment.row(fps, class_names)
        preview = result.previews.get(index)
        image = f"<td>{_jpeg(preview.image, f'frame {preview.frame}') if preview is not None else ''}</td>"
        times = f"{row['start_s']:.2f} - {row['end_s']:.2f} s" if fps > 0 else ""
        rows.append(f"<tr><td>{index + 1}</td><td>{_e(row['class'])}</td><td>{segment.start} - {segment.end}</td>"
                    f"<td>{times}</td><td>{segment.score:.2f}</td>{image if previews else ''}</tr>")
    header = "<th>#</th><th>class</th><th>frames</th><th>time</th><th>score</th>" + ("<th>preview</th>" if previews else "")
    return f"<table><tr>{header}</tr>" + "".join(rows) + "</table>"


def _jpeg(rgb: np.ndarray, alt: str) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=80)
    return f"<img alt=\"{_e(alt)}\" src=\"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}\">"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
