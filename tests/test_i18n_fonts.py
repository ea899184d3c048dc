"""Vietnamese on screen: every character of every language file is in the SDF label atlas and the ImGui font, and
both draw the stacked diacritics (ặ ẫ ổ ự ỹ …) — checked in the pixels of a headless frame, against the base letter
and the letter with one mark fewer, not against stored images."""
import numpy as np
import pytest

from llmviz.common import i18n
from gl_support import headless_or_skip

# (letter, the same letter with one mark fewer, where that mark is, the base letter, marks above it, a dot below it)
STACKED = [("ặ", "ă", "below", "a", True, True), ("ẫ", "â", "above", "a", True, False),
           ("ổ", "ô", "above", "o", True, False), ("ự", "ư", "below", "u", False, True),
           ("ỹ", "y", "above", "y", True, False), ("ệ", "ê", "below", "e", True, True),
           ("ở", "ơ", "above", "o", True, False), ("Ẵ", "Ă", "above", "A", True, False),
           ("ữ", "ư", "above", "u", True, False)]
SIZE = (640, 160)
CELL = 64  # px between the letters drawn side by side


def language_characters() -> dict[str, str]:
    """Every character a language's texts and sentences show -> the language and key it is in."""
    found = {}
    for code in i18n.available():
        language = i18n.load(code)
        texts = {**language.texts, **{f"sentence {en[:30]!r}": text
                                      for en, text in i18n.sentences(code, language.folder).items()}}
        for key, text in texts.items():
            for ch in text:
                if not ch.isspace():
                    found.setdefault(ch, f"{code}: {key}")
    return found


def ink_boxes(image, count, threshold=100):
    """(top, bottom, ink mask) of each CELL-wide column of ``image`` (y down): where letter k was drawn."""
    ink = image[..., :3].max(axis=-1) > threshold
    boxes = []
    for k in range(count):
        cell = ink[:, k * CELL:(k + 1) * CELL]
        rows = np.flatnonzero(cell.any(axis=1))
        assert len(rows), f"letter {k} drew no ink"
        boxes.append((int(rows[0]), int(rows[-1]), cell))
    return boxes


def check_stacks(boxes, min_px):
    """Each stacked letter against its base and the letter with one mark fewer, all drawn on one baseline."""
    for k, (full, fewer, where, base, above, below) in enumerate(STACKED):
        top, bottom, ink = boxes[3 * k]
        fewer_top, fewer_bottom, fewer_ink = boxes[3 * k + 1]
        base_top, base_bottom, base_ink = boxes[3 * k + 2]
        assert np.count_nonzero(ink != base_ink) >= 2 * min_px, f"{full} draws as {base}"
        assert np.count_nonzero(ink != fewer_ink) >= min_px, f"{full} draws as {fewer}"
        if above:
            assert top <= base_top - min_px, f"{full}: no ink above {base} (top {top} vs {base_top})"
        if below:
            assert bottom >= base_bottom + min_px, f"{full}: no dot below {base} ({bottom} vs {base_bottom})"
        if where == "above":  # the mark stacked on the other one sits higher than the letter with one mark
            assert top <= fewer_top - min_px, f"{full}: its upper mark is missing (top {top} vs {fewer}'s {fewer_top})"
        else:
            assert bottom >= fewer_bottom + min_px, f"{full}: its dot below is missing ({bottom} vs {fewer_bottom})"


def test_every_character_of_every_language_is_in_the_label_atlas_and_the_imgui_font():
    imgui = pytest.importorskip("imgui_bundle").imgui
    from llmviz.engine.render.text import default_glyph_atlas
    from llmviz.scenes import panels

    characters = language_characters()
    assert "ặ" in characters or "ữ" in characters  # the Vietnamese files are really read
    atlas = default_glyph_atlas()
    missing = {ch: where for ch, where in characters.items() if ch not in atlas.index}
    assert not missing, f"not in the SDF atlas: {missing}"
    context = imgui.create_context()
    try:
        panels.load_font()
        fonts = imgui.get_io().fonts
        fonts.build()
        missing = {ch: where for ch, where in characters.items()
                   if fonts.fonts[0].find_glyph_no_fallback(ord(ch)) is None}
        assert not missing, f"not in the ImGui font: {missing}"
    finally:
        imgui.destroy_context(context)


def _letters():
    return [ch for full, fewer, _, base, _, _ in STACKED for ch in (full, fewer, base)]


@pytest.fixture(scope="module")
def renderer():
    yield from headless_or_skip((CELL * len(_letters()), SIZE[1]))


def test_the_sdf_labels_draw_stacked_diacritics(renderer):
    from llmviz.engine.camera import Camera
    from llmviz.engine.ecs.world import World
    from llmviz.engine.render.text import default_glyph_atlas
    from llmviz.engine.systems.labels import LabelSelector

    letters = _letters()
    width = CELL * len(letters)
    camera = Camera(position=np.array([0.0, 0.0, 10.0]), viewport=(width, SIZE[1]))
    # anchors at the cells' pixel centres on the z = 0 plane (the projection is linear along x there)
    world = World()
    a, b = camera.project(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))[:, 0]
    units_per_px = 1.0 / (b - a)
    positions = np.array([[((k + 0.5) * CELL - a) * units_per_px, 0.0, 0.0] for k in range(len(letters))])
    ids = world.spawn(len(letters), transform={"position": positions})
    world.add_labels(ids, letters, height=70 * units_per_px, billboard=False, color=np.array([1.0, 1.0, 1.0, 1.0]))
    glyphs = LabelSelector(default_glyph_atlas())(world, np.ones(world.capacity, bool), camera)
    renderer.begin_frame((0.0, 0.0, 0.0, 1.0))
    renderer.draw_labels(camera, glyphs)
    renderer.end_frame()
    check_stacks(ink_boxes(renderer.read_pixels(), len(letters)), min_px=3)


def test_the_imgui_font_draws_stacked_diacritics():
    imgui = pytest.importorskip("imgui_bundle").imgui
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.explorer.controller import UiHost

    letters = _letters()
    size = (CELL * len(letters), SIZE[1])
    try:
        r = headless.headless_renderer(size)
    except Exception as exc:
        pytest.skip(f"no headless OpenGL context: {exc}")
    try:
        ui = UiHost(r, size)
        ui.resize(size)
        ui.io.delta_time = 1 / 60
        r.begin_frame((0.0, 0.0, 0.0, 1.0))
        r.end_frame()
        imgui.new_frame()
        draw = imgui.get_foreground_draw_list()
        for k, ch in enumerate(letters):  # the panels' own font and size, one letter a cell, one baseline
            draw.add_text(imgui.ImVec2(k * CELL + CELL / 2 - 5, 60), 0xFFFFFFFF, ch)
        imgui.render()
        ui.renderer.render(imgui.get_draw_data())
        r.ctx.finish()
        check_stacks(ink_boxes(r.read_pixels(), len(letters), threshold=60), min_px=1)
    finally:
        r.release()
