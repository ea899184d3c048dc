"""Chapter files: every bundled chapter validates; malformed ones are reported as "file:line: problem"."""
import json

import numpy as np
import pytest

from llmviz.scenes.chapters import animations as anim
from llmviz.scenes.chapters.format import (ChapterError, Names, chapter_files, load_chapters, model_names,
                                           parse_chapter)
from llmviz.scenes.chapters.text import TemplateError, check_template, render_text
from llmviz.scenes.cli.main import SUBCOMMANDS, main


@pytest.fixture(scope="module")
def names():
    return model_names("nano-gpt")


def test_every_bundled_chapter_validates(names):
    chapters = load_chapters(model_names)  # each against its own model, each step against its scene
    # 1 to 14, then the later chapters of the model issues (15 vit-tiny, 16 clip-tiny, 17 llava-tiny, 18 whisper-tiny;
    # each lands with its model), in order
    # (19 the hybrid assistant, 20 how nano-GPT learned to sort, 21 how large assistants are trained)
    later = [n for n in range(15, 30) if any(p.name.startswith(f"{n}-") for p in chapter_files())]
    assert {16, 18, 20} <= set(later)
    assert [c.number for c in chapters] == list(range(1, 15)) + later
    assert len(chapter_files()) == 14 + len(later)
    models = {11: "moe-4", 12: "mamba-tiny", 13: "rwkv-tiny", 14: "jamba-tiny", 15: "vit-tiny", 16: "clip-tiny",
              17: "llava-tiny", 18: "whisper-tiny"}
    models.update({c.number: c.model for c in chapters if c.number == 19})  # the hybrid assistant's own model
    for chapter in chapters:
        assert chapter.model == models.get(chapter.number, "nano-gpt") and chapter.title and chapter.steps
        assert chapter.steps[0].camera is not None
    # Chapter 9 shows the stack at GPT-2 small and GPT-3 scale, then comes back to nano-GPT.
    stack = chapters[8]
    scenes = [stack.scene_of(k) for k in range(len(stack.steps))]
    assert {"gpt-2-small", "gpt-3-175b"} <= set(scenes) and scenes[-1] == "nano-gpt"
    assert {s.camera.preset for s in stack.steps if s.scene} == {"overview", "first block"}
    # The animations all appear somewhere: split, addition, progressive fill, mask, packet.
    used = {a.kind for c in chapters for s in c.steps for a in s.animations}
    assert used == {"split", "add", "fill", "causal_mask", "packet"}
    assert any(s.pause for c in chapters for s in c.steps)


GOOD = '''title = "T"
model = "nano-gpt"

[[step]]
text = "Input {input}, first token [[tokens|here]]."
duration = 2.0
camera = "preset:overview"
'''


@pytest.mark.parametrize("source,line,needle", [
    ('title = "T"\n[[step]]\ntext = "a"\nduration = = 2\n', 4, "not valid TOML"),
    (GOOD + "colour = \"red\"\n", 8, "unknown step field 'colour'"),
    (GOOD + 'focus = ["embed.out", "blocks.9.attn"]\n', 8, "no tensor or group 'blocks.9.attn'"),
    (GOOD + 'frame = ["model", "blocks.7"]\n', 8, "frame: no tensor or group 'blocks.7'"),
    (GOOD + 'frame = "model"\n', 8, "'frame' must be a list"),
    (GOOD.replace("[[tokens|here]]", "[[blocks.0.nothing|here]]"), 5, "no tensor or group 'blocks.0.nothing'"),
    (GOOD.replace("duration = 2.0", "duration = -1.5"), 6, "duration must be a positive number"),
    (GOOD.replace("{input}", "{value embed.nope[0,0]}"), 5, "no tensor or group 'embed.nope'"),
    (GOOD.replace("{input}", "{eval embed.out}"), 5, "unknown template function 'eval'"),
    (GOOD.replace("{input}", "{value embed.out[0,:]}"), 5, "needs one index per axis"),
    (GOOD.replace("preset:overview", "preset:sideways"), 7, "no camera preset 'sideways'"),
    (GOOD.replace('camera = "preset:overview"\n', ""), 4, "first step must set a camera"),
    (GOOD + '\n[[step.animate]]\nkind = "wobble"\n', 10, "animation kind 'wobble'"),
    (GOOD + '\n[[step.animate]]\nkind = "add"\ntensor = "embed.out"\na = "embed.tok"\nb = "embed.posx"\n', 13,
     "no tensor 'embed.posx'"),
    (GOOD + '\n[[step.animate]]\nkind = "fill"\ntensor = "embed.out"\nduration = 5.0\n', 10, "runs past the end"),
    (GOOD.replace('model = "nano-gpt"', 'model = "nano-gpt"\nauthor = "x"'), 3, "unknown chapter field 'author'"),
    ('model = "nano-gpt"\n', 1, "missing 'title'"),
    (GOOD.replace('model = "nano-gpt"', 'model = "nano-gpt"\ninput = "' + "A" * 201 + '"'), 3,
     "input must be one line of 1 to 200 characters, got 201"),
    (GOOD.replace('model = "nano-gpt"', 'model = "nano-gpt"\ninput = "AB\\nC"'), 3, "input must be one line"),
    (GOOD.replace('model = "nano-gpt"', 'model = "nano-gpt"\ninput = 5'), 3, "'input' must be"),
    (GOOD + 'scene = "gpt-99"\n', 8, "scene: unknown model 'gpt-99'"),
    (GOOD + 'scene = "gpt-2-small"\n', 5, "{input} reads live values, which a step shown on scene 'gpt-2-small'"),
    (GOOD.replace("{input}", "{layers}").replace("[[tokens|here]]", "[[blocks.11|here]]") + 'scene = "gpt-3"\n'
     + 'focus = ["blocks.95.attn", "blocks.96"]\n', 9, "no tensor or group 'blocks.96'"),
    (GOOD.replace("{input}", "{layers}").replace("[[tokens|here]]", "[[blocks.12|here]]")
     + 'scene = "gpt-2-small"\n', 5, "no tensor or group 'blocks.12'"),
    (GOOD.replace("{input}", "{layers}").replace("preset:overview", "preset:sideways") + 'scene = "gpt-2-small"\n', 7,
     "no camera preset 'sideways'"),
])
def test_malformed_chapter_names_file_line_and_problem(names, source, line, needle):
    with pytest.raises(ChapterError) as info:
        parse_chapter(source, "chapters/bad.toml", names)
    message = str(info.value)
    assert message.startswith(f"chapters/bad.toml:{line}: "), message
    assert needle in message, message


def test_good_chapter_parses_and_unknown_model_is_an_error(names):
    chapter = parse_chapter(GOOD, "07-x.toml", names)
    assert chapter.number == 7 and chapter.steps[0].duration == 2.0 and chapter.input is None
    asked = parse_chapter(GOOD.replace('model = "nano-gpt"', 'model = "nano-gpt"\ninput = "CBA"'), "07-x.toml", names)
    assert asked.input == "CBA"
    with pytest.raises(ChapterError, match=r"^m.toml:2: model: "):
        parse_chapter(GOOD.replace("nano-gpt", "no-such-model"), "m.toml", model_names)


def test_scene_steps_resolve_against_their_model_and_read_only_its_spec(names):
    source = GOOD.replace("{input}", "{layers} {d_model} {heads} {param_count}").replace(
        "[[tokens|here]]", "[[blocks.95|here]]") + 'scene = "gpt-3"\nfocus = ["blocks.95"]\n'
    chapter = parse_chapter(source, "s.toml", names)
    assert chapter.steps[0].scene == "gpt-3-175b" and chapter.scene_of(0) == "gpt-3-175b"
    same = parse_chapter(GOOD + 'scene = "nano-gpt"\n', "s.toml", names)
    assert same.steps[0].scene is None and same.scene_of(0) == "nano-gpt"
    from llmviz.models.registry import load_registry

    gpt3 = load_registry().get("gpt-3-175b")
    assert render_text("{layers} {d_model} {heads} {d_ff} {param_count}", None, gpt3).text == \
        "96 12,288 96 49,152 174.6B"
    moe = load_registry().get("moe-4")
    assert render_text("{experts} {top_k} {param_count} {active_params}", None, moe).text == "4 2 247.4K 149.1K"


def test_moe_chapter_may_read_routing_values():
    moe = model_names("moe-4")
    assert {"blocks.0.moe.probs", "blocks.1.moe.topk", "blocks.0.moe.load", "blocks.0.moe.aux_loss"} <= moe.values
    assert not moe.values & (moe.tensors | moe.groups)
    with pytest.raises(ChapterError, match="no tensor or group 'blocks.0.moe.load'"):
        parse_chapter(GOOD + 'focus = ["blocks.0.moe.load"]\n', "m.toml", moe)  # a value, not a block


def test_text_templates_and_references():
    values = {"tokens": np.array([2, 0, 1]), "x": np.array([[1.0, -2.5], [3.0, 4.0]]),
              "p": np.array([[0.1, 0.7, 0.2]])}
    rendered = render_text("{input} {tokens} {value x[0,1]} {term x[0,1]} {term x[1,0]} {mean x[:,0]} "
                           "{max x[1,:]} {argmax p[-1,:]} {letter p[0,:]} {letter tokens[0]} {shape x} "
                           "{vector x[1,:]} {{literal}} [[x|the X]]", values)
    assert rendered.text == "CAB [2, 0, 1] −2.5 (−2.5) 3 2 4 1 B C 2×2 [3, 4] {literal} the X"
    (ref,) = rendered.references
    assert rendered.text[ref.start:ref.end] == "the X" and ref.target == "x"
    assert check_template("{value x[0,0]} [[y]]", {"x", "y"}) == ["x", "y"]
    for bad in ("{value x[0, a]}", "{ value }", "unclosed {", "{__import__ os}"):
        with pytest.raises(TemplateError):
            check_template(bad, {"x"})


def test_animation_frames_are_pure_functions_of_progress():
    mask = anim.causal_mask("s", (4, 4), 1.0)
    assert (mask.masked == np.triu(np.ones((4, 4), bool), 1)).all()
    half = anim.causal_mask("s", (4, 4), 0.5)
    assert half.masked[:2].sum() == 3 + 2 and not half.masked[2:].any()  # rows 0 and 1 have fallen
    counts = [anim.fill("t", (3, 5), p, "cells").cells.sum() for p in np.linspace(0, 1, 11)]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 15
    assert anim.fill("t", (3, 5), 1 / 3, "rows").cells.sum() == 5
    path = anim.packet(["a", "b", "c"], [[0, 0, 0], [0, -2, 0], [2, -2, 0]], 0.75)
    assert np.allclose(path.position, [1, -2, 0]) and path.segment == 1 and path.tensor == "c"
    split = anim.split("w", 2, "row", 1.0)
    assert split.lift == split.travel == 1.0 and split.index == 2
    add = anim.add("o", "a", "b", (6, 48), 0.5)
    assert add.sources == ("a", "b") and add.cells[:3].all() and not add.cells[3:].any()
    assert (anim.fill("t", (2, 2), 0.7).cells == anim.fill("t", (2, 2), 0.7).cells).all()


def test_shown_values_empty_unfilled_cells_and_drop_the_mask_row_by_row():
    scores = np.where(np.triu(np.ones((3, 3), bool), 1), -np.inf, 1.0)
    shown = anim.shown_values(anim.causal_mask("s", (3, 3), 0.34), scores)
    assert np.isneginf(shown[0, 1:]).all() and np.isnan(shown[1, 2]) and (shown[2, :] == 1.0).all()
    assert np.array_equal(anim.shown_values(anim.causal_mask("s", (3, 3), 1.0), scores), scores)
    vector = np.arange(4.0)
    half = anim.shown_values(anim.fill("v", (4, 1), 0.5), vector)
    assert half.shape == (4,) and np.array_equal(half[:2], [0, 1]) and np.isnan(half[2:]).all()
    assert anim.shown_values(anim.split("w", 1, "row", 0.5), vector) is None


def test_chapters_command_lists_chapters_as_json(capsys, monkeypatch):
    monkeypatch.setitem(SUBCOMMANDS, "chapters", "llmviz.scenes.cli.chapters_cmd")
    assert main(["chapters", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    later = [n for n in range(15, 30) if any(p.name.startswith(f"{n}-") for p in chapter_files())]
    assert [c["chapter"] for c in data] == list(range(1, 15)) + later
    assert data[10]["model"] == "moe-4" and {s["scene"] for s in data[10]["steps"]} == {"moe-4"}
    assert data[13]["model"] == "jamba-tiny" and {s["scene"] for s in data[13]["steps"]} == {"jamba-tiny"}
    assert [s["scene"] for s in data[8]["steps"]][3:] == ["gpt-2-small", "gpt-2-small", "gpt-3-175b", "nano-gpt"]
    first = data[1]["steps"]
    assert first[0]["start"] == 0 and first[1]["start"] == first[0]["duration"]
    assert main(["chapters"]) == 0
    out = capsys.readouterr().out
    assert "Embedding" in out and "Mixture of experts" in out and "on gpt-3-175b" in out


def test_names_of_layout_cover_trace_ids(names):
    assert isinstance(names, Names)
    assert {"embed.out", "blocks.2.attn.head.2.softmax", "probs", "lm_head.weight"} <= names.tensors
    assert {"blocks.0.attn.heads", "embed", "output"} <= names.groups
