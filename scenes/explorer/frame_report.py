"""What one frame shows, as JSON: its labels, their overlaps, those under the UI, the legend, unlabelled data blocks.

Written by `llmviz render --report FILE.json` and by the window's View menu ("Write frame
report"). The checks here are deliberately plain (every pair of labels, every label against
every UI rectangle) and do not reuse the label layout's own code, so the report can catch the
layout out: the targets are 0 overlaps, 0 labels under the UI, every label at least 11 px tall.
"""
from __future__ import annotations

import json

import numpy as np

from llmviz.engine.systems.label_layout import LEGIBLE_PX

MIN_LABELLED_BLOCK_PX = 24.0  # a data block this big on screen (both sides) is expected to carry its caption


def _pairs_overlapping(boxes: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs of boxes whose interiors intersect (sharing an edge is not overlapping)."""
    if len(boxes) < 2:
        return []
    a, b = boxes[:, None, :], boxes[None, :, :]
    inter_w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    inter_h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    hit = np.triu((inter_w > 0.5) & (inter_h > 0.5), k=1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(hit))]


def _view_labels(view, size) -> list[dict]:
    engine = view.session.engine
    selector = engine.labels
    if selector is None:
        return []
    laid = selector.last
    world = engine.world
    slots = selector.slots[laid.labels]
    text_index = world.column("label", "text_index")[slots]
    x, y, _, _ = view.pixels(size)
    offset = np.array([x, y, x, y], np.float64)
    return [{"text": world.labels[int(t)], "pixel_height": round(float(hpx), 2),
             "box": [round(float(v), 1) for v in box + offset]}
            for t, hpx, box in zip(text_index, laid.pixel_height, laid.boxes)]


def _unlabelled_data_blocks(view, size) -> list[dict]:
    """Data-cell blocks drawn big enough to label whose caption the frame does not show."""
    session = view.session
    model = session.model
    engine = session.engine
    if model is None or engine.labels is None:
        return []
    world = engine.world
    drawn = np.asarray(getattr(session, "last_drawn", np.zeros(0, np.int64)), np.int64)
    drawn = drawn[world["datatex"].has[drawn] & (model.row_of_slot[np.minimum(drawn, len(model.row_of_slot) - 1)] >= 0)]
    if not len(drawn):
        return []
    boxes = engine.labels.boxes_of(world, drawn, engine.camera)
    w, h = engine.camera.viewport
    clipped = np.c_[np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h),
                    np.clip(boxes[:, 2], 0, w), np.clip(boxes[:, 3], 0, h)]
    big = ((clipped[:, 2] - clipped[:, 0]) >= MIN_LABELLED_BLOCK_PX) & \
          ((clipped[:, 3] - clipped[:, 1]) >= MIN_LABELLED_BLOCK_PX)
    labelled = set(engine.labels.slots[engine.labels.last.labels].tolist())
    x, y, _, _ = view.pixels(size)
    out = []
    for slot, box in zip(drawn[big].tolist(), clipped[big]):
        if slot not in labelled:
            row = int(model.row_of_slot[slot])
            out.append({"id": model.layout.ids[row], "box": [round(float(v), 1) for v in box + (x, y, x, y)]})
    return out


def frame_report(ex) -> dict:
    """The report of the Explorer's last frame (call after ``ex.frame``)."""
    size = ex.renderer.size
    labels, unlabelled = [], []
    for view in ex.views:
        labels += _view_labels(view, size)
        unlabelled += _unlabelled_data_blocks(view, size)
    boxes = np.array([item["box"] for item in labels], np.float64).reshape(-1, 4)
    overlaps = _pairs_overlapping(boxes)
    ui = np.asarray(ex.ui_rects, np.float64).reshape(-1, 4)
    if ex.ui is not None and len(ui):  # display pixels -> target pixels
        dw, dh = ex.ui.io.display_size.x, ex.ui.io.display_size.y
        ui = ui * np.array([size[0] / max(dw, 1), size[1] / max(dh, 1)] * 2)
    under = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if ((ui[:, 0] < x1) & (x0 < ui[:, 2]) & (ui[:, 1] < y1) & (y0 < ui[:, 3])).any():
            under.append(i)
    legend = [dict(entry) for entry in getattr(ex, "legend_report", [])]
    small = [i for i, item in enumerate(labels) if item["pixel_height"] < LEGIBLE_PX - 0.05]
    return {
        "scene": ex.session.name,
        "size": list(size),
        "labels": labels,
        "overlaps": [[labels[i]["text"], labels[j]["text"], i, j] for i, j in overlaps],
        "under_ui": [labels[i]["text"] for i in under],
        "too_small": [labels[i]["text"] for i in small],
        "ui_rects": [[round(float(v), 1) for v in r] for r in ui],
        "legend": legend,
        "unlabelled_data_blocks": unlabelled,
        "summary": {"labels": len(labels), "overlaps": len(overlaps), "under_ui": len(under),
                    "min_pixel_height": round(min((item["pixel_height"] for item in labels), default=0.0), 2),
                    "legend_entries": len(legend), "unlabelled_data_blocks": len(unlabelled)},
    }


def report_json(report: dict) -> bytes:
    return (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
