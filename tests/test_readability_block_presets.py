"""The "first block" (F7) and "last block" presets frame exactly that block: all of it, nothing of any other layer (issue 10, defect 13)."""
import numpy as np
import pytest

from llmviz.models.registry import load_registry
from llmviz.scenes.layout import layout_model
from llmviz.scenes.model_paths import preset_camera

VIEWPORT = (1280, 720)
SPECS = [s for s in load_registry(include_user=False) if s.architecture.n_layers]


def _top_group(layout, row: int) -> str:
    """The model-level group (embed, blocks.i, output) a block lies under."""
    g = int(layout.group[row])
    while layout.group_parent[g] > 0:
        g = int(layout.group_parent[g])
    return layout.group_ids[g]


def _screen_boxes(camera, layout):
    """Pixel bounds of every block's box, from its 8 corners."""
    lo, hi = layout.center - layout.size / 2, layout.center + layout.size / 2
    corners = np.stack([np.c_[np.where(m & 1, hi[:, 0], lo[:, 0]), np.where(m & 2, hi[:, 1], lo[:, 1]),
                              np.where(m & 4, hi[:, 2], lo[:, 2])] for m in range(8)], axis=1)
    p = camera.project(corners.reshape(-1, 3)).reshape(-1, 8, 3)
    return p[..., 0].min(1), p[..., 0].max(1), p[..., 1].min(1), p[..., 1].max(1), p[..., 2].min(1)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
@pytest.mark.parametrize("preset, block", [("first block", 0), ("last block", -1)])
def test_a_block_preset_shows_that_block_whole_and_no_other(spec, preset, block):
    layout = layout_model(spec)
    wanted = f"blocks.{spec.architecture.n_layers - 1 if block < 0 else block}"
    camera = preset_camera(layout.presets[preset], VIEWPORT, layout)
    x0, x1, y0, y1, depth = _screen_boxes(camera, layout)
    w, h = VIEWPORT
    in_view = (x1 > 0) & (x0 < w) & (y1 > 0) & (y0 < h) & (depth > 0)
    whole = (x0 >= 0) & (x1 <= w) & (y0 >= 0) & (y1 <= h) & (depth > 0)
    groups = np.array([_top_group(layout, i) for i in range(len(layout.ids))])
    mine = groups == wanted
    assert mine.any() and whole[mine].all(), f"{spec.id}: parts of {wanted} outside the view"
    intruders = sorted(set(groups[in_view & ~mine]))
    assert not intruders, f"{spec.id} {preset}: the view also shows {intruders}"
