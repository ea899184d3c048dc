"""Token and vocabulary letters on the axes of the live models' blocks (issue 10, defect 3): the labels beside
a token-indexed block's rows spell the input, in order; the columns of probabilities spell the vocabulary;
a new input rewrites them."""
import numpy as np
import pytest
from scene_support import live_scene

from llmviz.models.sim import moe_corpus, sort_task
from llmviz.scenes.model_scene import CAPTION_PRIORITY


@pytest.fixture(scope="module")
def nano():
    with live_scene("nano-gpt", (640, 360)) as (scene, renderer):
        yield scene, renderer


def axis_texts(scene, tensor_id, side):
    """Brute force, from the world alone: the texts of the label entities just left of the block's rows
    (``side`` "left", top to bottom) or just under its columns ("below", left to right); "" where blank."""
    world, layout = scene.world, scene.model.layout
    i = layout.index(tensor_id)
    (cx, cy, _), (sx, sy, _) = layout.center[i], layout.size[i]
    left, right, top, bottom = cx - sx / 2, cx + sx / 2, cy + sy / 2, cy - sy / 2
    row_pitch, col_pitch = sy / layout.rows[i], sx / layout.cols[i]
    found = []
    own = scene.model.row_of_slot
    for slot in world.query("label"):
        if slot < len(own) and own[slot] >= 0:
            continue  # a block's own caption
        x, y, _ = world.column("transform", "position")[slot] + world.column("label", "offset")[slot]
        index = int(world.column("label", "text_index")[slot])
        text = world.labels[index] if 0 <= index < len(world.labels) else ""
        if side == "left" and left - 1.5 * row_pitch < x < left and bottom < y < top:
            found.append((-y, text))
        if side == "below" and bottom - 1.5 * col_pitch < y < bottom and left < x < right:
            found.append((x, text))
    return [text for _, text in sorted(found)]


def test_embedding_rows_spell_the_input_and_probability_columns_the_vocabulary(nano):
    scene, _ = nano
    text = scene.live.session.input_text
    rows = scene.model.layout.rows[scene.model.layout.index("embed.tok")]
    for tensor_id in ("tokens", "embed.tok", "embed.out", "blocks.0.ln1.out", "blocks.1.attn.head.2.q",
                      "blocks.0.attn.head.0.scores", "ln_f.out", "logits", "probs"):
        assert axis_texts(scene, tensor_id, "left") == list(text) + [""] * (rows - len(text)), tensor_id
    # Attention: the keys along the other axis.
    for tensor_id in ("blocks.0.attn.head.0.scores", "blocks.1.attn.head.1.softmax"):
        assert axis_texts(scene, tensor_id, "below") == list(text) + [""] * (rows - len(text)), tensor_id
    # The vocabulary: A, B, C (sort_task: A=0, B=1, C=2) under the columns of logits and probabilities,
    # and beside the rows of the token embedding.
    assert axis_texts(scene, "probs", "below") == list("ABC") == list(sort_task.ALPHABET)
    assert axis_texts(scene, "logits", "below") == list("ABC")
    assert axis_texts(scene, "embed.tok.weight", "left") == list("ABC")


def test_a_new_input_rewrites_the_token_letters_without_growing_the_world(nano):
    scene, _ = nano
    live = scene.live
    world = scene.world
    before = (world.structure_version, len(world.labels), world.count)
    old = live.session.input_text
    new = "ACCABB" if old != "ACCABB" else "BBACCA"
    try:
        assert live.session.set_input(new) is None
        assert live.wait(20)
        assert axis_texts(scene, "embed.tok", "left")[: len(new)] == list(new)
        assert axis_texts(scene, "blocks.0.attn.head.1.softmax", "below")[: len(new)] == list(new)
        assert (world.structure_version, len(world.labels), world.count) == before
    finally:
        live.session.set_input(old)
        live.wait(20)
    assert axis_texts(scene, "embed.tok", "left")[: len(old)] == list(old)


def test_axis_letters_yield_to_captions_and_stay_off_the_blocks(nano):
    scene, _ = nano
    world, layout = scene.world, scene.model.layout
    axis = scene.live.axis_labels
    slots = world.slots(axis.ids)
    assert len(slots) > 0
    assert (world.column("label", "priority")[slots] < CAPTION_PRIORITY).all()
    # No letter's box (its line height square around the anchor) reaches into any block: brute force.
    anchors = world.column("transform", "position")[slots] + world.column("label", "offset")[slots]
    half = world.column("label", "height")[slots] * 0.4
    lo, hi = layout.center - layout.size / 2, layout.center + layout.size / 2
    for (x, y, _), h in zip(anchors, half):
        inside = (x + h > lo[:, 0]) & (x - h < hi[:, 0]) & (y + h > lo[:, 1]) & (y - h < hi[:, 1])
        assert not inside.any(), (x, y, [layout.ids[i] for i in np.flatnonzero(inside)])


def test_moe_rows_spell_the_text_with_visible_spaces():
    with live_scene("moe-4", (640, 360)) as (scene, _):
        text = scene.live.text
        assert " " in text  # the default text has spaces: they must show
        shown = [{" ": "·", "\n": "↵"}.get(ch, ch) for ch in text]
        rows = int(scene.model.layout.rows[scene.model.layout.index("embed.tok")])
        assert axis_texts(scene, "embed.tok", "left") == shown + [""] * (rows - len(text))
        assert axis_texts(scene, "blocks.0.attn.head.0.scores", "below") == shown + [""] * (rows - len(text))
        # Under the probabilities: the model's whole vocabulary, in order.
        vocabulary = [{" ": "·", "\n": "↵"}.get(ch, ch) for ch in moe_corpus.ALPHABET]
        assert axis_texts(scene, "probs", "below") == vocabulary
