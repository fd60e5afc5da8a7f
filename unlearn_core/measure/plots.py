"""Plots drawn with PIL (no plotting package is needed): scatter and line plots (the results
table's trade-off plot, the embedding view, the audit's curves) and bar charts (the audit's AUCs)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from unlearn_core.measure.viz import font

PALETTE = [
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
    (140, 86, 75), (23, 190, 207), (90, 90, 90), (227, 119, 194), (188, 189, 34), (0, 0, 0),
]  # fmt: skip
LEGEND = 150  # the scatter legend's least width in pixels, part of the plot's `size`


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    colour: tuple[int, int, int]
    labels: list[str] | None = None  # a short text beside each point
    radius: int = 4
    spreads: list[tuple[float, float, float, float]] | None = None  # per point (x low, x high, y low, y high): whiskers
    line: bool = False  # join the points in order


def scatter(
    series: list[Series],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (460, 400),
    limits: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """Points of each series in its colour, a legend on the right; `limits` (x0, x1, y0, y1)
    fixes the axes (default: the data's range with a margin)."""
    small = font(11)
    legend = max(LEGEND, int(max((small.getlength(s.name) for s in series), default=0)) + 36)  # fits the longest name
    w, h = size[0] - LEGEND + legend, size[1]
    left, right, top, bottom = 52, legend, 30 if title else 12, 40
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    pts = [p for s in series for p in s.points]
    if limits is None:
        xs, ys = [p[0] for p in pts] or [0.0], [p[1] for p in pts] or [0.0]
        mx, my = (max(xs) - min(xs)) * 0.08 or 0.5, (max(ys) - min(ys)) * 0.08 or 0.5
        limits = (min(xs) - mx, max(xs) + mx, min(ys) - my, max(ys) + my)
    x0, x1, y0, y1 = limits

    def xy(p: tuple[float, float]) -> tuple[float, float]:
        return (left + (w - left - right) * (p[0] - x0) / (x1 - x0), top + (h - top - bottom) * (1 - (p[1] - y0) / (y1 - y0)))

    if title:
        draw.text((left, 8), title, fill=(0, 0, 0), font=font(13))
    draw.rectangle([left, top, w - right, h - bottom], outline=(170, 170, 170))
    for frac in (0, 0.5, 1):
        vx, vy = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        px, _ = xy((vx, y0))
        _, py = xy((x0, vy))
        draw.text((px - 12, h - bottom + 4), f"{vx:.2g}", fill=(80, 80, 80), font=small)
        draw.text((4, py - 6), f"{vy:.2g}", fill=(80, 80, 80), font=small)
    draw.text(((left + w - right) / 2 - 40, h - 18), xlabel, fill=(0, 0, 0), font=small)
    if ylabel:  # turned a quarter, centred on the left edge, between the tick labels and the frame
        tw = int(draw.textlength(ylabel, font=small)) + 2
        label = Image.new("RGB", (tw, 14), (255, 255, 255))
        ImageDraw.Draw(label).text((1, 0), ylabel, fill=(0, 0, 0), font=small)
        canvas.paste(label.rotate(90, expand=True), (left - 18, int((top + h - bottom - tw) / 2)))
    for j, s in enumerate(series):
        if s.line and len(s.points) > 1:
            draw.line([xy(p) for p in s.points], fill=s.colour, width=2)
        for i, p in enumerate(s.points):
            cx, cy = xy(p)
            if s.spreads:
                xl, xh, yl, yh = s.spreads[i]
                draw.line([xy((xl, p[1])), xy((xh, p[1]))], fill=s.colour, width=1)
                draw.line([xy((p[0], yl)), xy((p[0], yh))], fill=s.colour, width=1)
            r = s.radius
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=s.colour, outline=(255, 255, 255))
            if s.labels:
                draw.text((cx + r + 2, cy - 6), s.labels[i], fill=s.colour, font=small)
        ly = top + 6 + 16 * j
        draw.ellipse([w - right + 10, ly, w - right + 20, ly + 10], fill=s.colour)
        draw.text((w - right + 26, ly - 1), s.name, fill=(0, 0, 0), font=small)
    return canvas


def bars(
    groups: dict[str, dict[str, float]],
    title: str = "",
    reference: float | None = None,
    band: float = 0.0,
    limits: tuple[float, float] = (0.0, 1.0),
    size: tuple[int, int] = (460, 260),
) -> Image.Image:
    """Horizontal bars: one block per group (a label on the left), one bar per entry, coloured by
    entry name (legend at the bottom); `reference` draws a vertical line there with a grey `band`
    of that half-width around it."""
    w, h = size
    left, right, top, bottom = 110, 40, 30 if title else 10, 34  # right: room for a full bar's value
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    small = font(11)
    names = list(dict.fromkeys(n for g in groups.values() for n in g))
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    lo, hi = limits

    def px(v: float) -> float:
        return left + (w - left - right) * (min(max(v, lo), hi) - lo) / (hi - lo)

    if title:
        draw.text((8, 8), title, fill=(0, 0, 0), font=font(13))
    if reference is not None:
        draw.rectangle([px(reference - band), top, px(reference + band), h - bottom], fill=(235, 235, 235))
    slot = (h - top - bottom) / max(1, sum(len(g) for g in groups.values()) + len(groups))
    y = top + slot / 2
    for label, entries in groups.items():
        draw.text((8, y + slot * len(entries) / 2 - 7), label, fill=(0, 0, 0), font=small)
        for name, value in entries.items():
            draw.rectangle([px(lo), y, px(value), y + slot * 0.8], fill=colours[name])
            draw.text((px(value) + 3, y + slot * 0.4 - 6), f"{value:.2f}", fill=(60, 60, 60), font=small)
            y += slot
        y += slot
    if reference is not None:
        draw.line([px(reference), top, px(reference), h - bottom], fill=(90, 90, 90), width=1)
    for frac in (0, 0.5, 1):
        v = lo + frac * (hi - lo)
        draw.text((px(v) - 8, h - bottom + 2), f"{v:.2g}", fill=(80, 80, 80), font=small)
    x = left
    for name in names:
        draw.rectangle([x, h - 13, x + 10, h - 3], fill=colours[name])
        draw.text((x + 14, h - 15), name, fill=(0, 0, 0), font=small)
        x += 24 + 7 * len(name)
    return canvas
