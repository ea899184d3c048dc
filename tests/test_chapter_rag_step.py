"""A chapter step on a scene of its own (chapter 19's step 2 on the retrieval scene; scenes/chapters/showable.py):
the format refuses what needs a model's layout, naming file and line; the runner's moment there has the scene's
own start camera and no focus; and on the live retrieval scene the step's text carries the real result: the
scores, the answer and the passage it came from are those `llmviz rag ask` prints for the same question (the
CLI's own store, search and reader, not the scene's worker)."""
import json
import re

import numpy as np
import pytest

from llmviz.scenes.chapters.format import ChapterError, load_chapters, model_names, parse_chapter
from llmviz.scenes.chapters.runner import ChapterRunner, scene_layout
from llmviz.scenes.chapters.showable import CHAPTER_SCENES, RAG_VALUES

QUESTION = "Where does Idrissa live?"
SIZE = (640, 360)
RAG = '''title = "T"
model = "jamba-tiny"

[[step]]
text = "Best {value rag.hit.score[0]} from {text rag.hit.file[0]}."
duration = 2.0
scene = "rag"
camera = "preset:overview"
'''


@pytest.mark.parametrize("source,line,needle", [
    (RAG + 'focus = ["blocks.0"]\n', 9, "focus: scene 'rag' is not a model's layout and has no blocks to focus"),
    (RAG + 'frame = ["model"]\n', 9, "frame: scene 'rag' is not a model's layout"),
    (RAG + '\n[[step.animate]]\nkind = "fill"\ntensor = "blocks.0.mamba.h.3"\n', 10,
     "animate: scene 'rag' is not a model's layout and has no blocks to animate"),
    (RAG.replace("preset:overview", "preset:sideways"), 8,
     "camera 'preset:sideways': a step on scene 'rag' takes one of its presets (preset:overview, preset:retrieval, "),
    (RAG.replace('"preset:overview"', '"block:blocks.0"'), 8, "a step on scene 'rag' takes one of its presets"),
    (RAG.replace("from {text", "from [[blocks.0|the first layer]] {text"), 5,
     "block reference [[blocks.0|the first layer]]: scene 'rag' has no blocks to light"),
    (RAG.replace("Best", "Best for {input}"), 5, "{input} reads a model's tokens or spec, which scene 'rag'"),
    (RAG.replace("Best", "Best of {layers}"), 5, "{layers} reads a model's tokens or spec"),
    (RAG.replace("rag.hit.score[0]", "rag.hit.nope[0]"), 5, "no tensor or group 'rag.hit.nope' (scene 'rag' offers"),
])
def test_a_step_on_the_retrieval_scene_refuses_what_needs_a_layout(source, line, needle):
    with pytest.raises(ChapterError) as info:
        parse_chapter(source, "chapters/bad.toml", model_names)
    message = str(info.value)
    assert message.startswith(f"chapters/bad.toml:{line}: step 1: "), message
    assert needle in message, message


def test_a_step_on_the_retrieval_scene_parses_with_or_without_its_camera():
    second = '\n[[step]]\ntext = "Answer {text rag.answer}."\nduration = 3.0\nscene = "rag"\n'
    chapter = parse_chapter(RAG + second, "19-x.toml", model_names)
    assert [chapter.scene_of(k) for k in range(2)] == ["rag", "rag"]
    assert chapter.steps[0].camera.preset == "overview" and chapter.steps[1].camera is None
    assert chapter.steps[0].focus == () and chapter.steps[0].animations == ()


def test_the_table_is_the_scenes_own_presets_and_start_camera():
    from llmviz.scenes import rag_live

    offer = CHAPTER_SCENES["rag"]
    assert offer.presets == tuple(rag_live.PRESETS) and offer.start == "overview"
    start = rag_live.overview_camera(SIZE)
    eye, target = rag_live.PRESETS["overview"]
    assert np.allclose(start.position, eye)
    forward = np.asarray(target) - np.asarray(eye)
    from llmviz.engine import math3d

    assert np.allclose(math3d.quat_rotate(start.orientation, [0, 0, -1]), forward / np.linalg.norm(forward))


def _chapter_19():
    return [c for c in load_chapters(model_names, lang="en") if c.number == 19]


def test_the_runners_moment_on_the_rag_step_has_the_scenes_camera_and_no_focus():
    from llmviz.engine import math3d
    from llmviz.scenes import rag_live

    runner = ChapterRunner(_chapter_19(), scene_layout("jamba-tiny"), viewport=SIZE)
    chapter = runner.current
    rag_steps = [k for k in range(len(chapter.steps)) if chapter.scene_of(k) == "rag"]
    assert rag_steps == [1] and all(chapter.scene_of(k) == "jamba-tiny" for k in range(len(chapter.steps)) if k != 1)
    preset = chapter.steps[1].camera.preset
    assert preset in CHAPTER_SCENES["rag"].presets
    eye, target = (np.asarray(v, np.float64) for v in rag_live.PRESETS[preset])
    for at_end in (False, True):     # a cut from jamba-tiny's pose: the scene's own camera from the step's start
        runner.go_to_step_end(1) if at_end else runner.go_to(0, 1)
        m = runner.moment()
        assert m.scene == "rag" and m.focus == () and len(m.focus_rows) == 0 and not m.dim and m.animations == ()
        assert np.allclose(m.camera.position, eye) and np.allclose(m.look_at, target)
        forward = math3d.quat_rotate(m.camera.orientation, [0.0, 0.0, -1.0])
        assert np.allclose(forward, (target - eye) / np.linalg.norm(target - eye))
        # no values bound yet (the window has not opened the scene): the panel says what it waits for
        assert m.text is None and m.waits_for == "chapter_ui.waiting_rag"
        assert runner.animated_values(m) == {}
    runner.go_to(0, 2)      # back on jamba-tiny: its own step's camera, not the rag scene's pose eased
    start = runner.moment()
    runner.go_to_step_end(2)
    assert start.scene == "jamba-tiny" and np.allclose(start.camera.position, runner.moment().camera.position)
    assert len(runner.moment().focus_rows)
    # a step on the scene without a camera: the scene's start camera (rag's overview), not the last step's pose
    second = '\n[[step]]\ntext = "Answer {text rag.answer}."\nduration = 3.0\nscene = "rag"\n'
    own = ChapterRunner([parse_chapter(RAG.replace("preset:overview", "preset:prompt") + second, "19-x.toml",
                                       model_names)], None, viewport=SIZE)
    own.go_to_step_end(1)
    assert np.allclose(own.moment().camera.position, rag_live.PRESETS["overview"][0])
    own.go_to_step_end(0)
    assert np.allclose(own.moment().camera.position, rag_live.PRESETS["prompt"][0])


def _asked(capsys):
    """`llmviz rag ask --json` on the demo store: the CLI's own path to the same question's result."""
    from llmviz.scenes.cli.main import main

    capsys.readouterr()
    assert main(["rag", "ask", "--question", QUESTION, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def rag_scene():
    pytest.importorskip("torch")
    from scene_support import live_scene

    with live_scene("rag", SIZE) as opened:
        yield opened


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_the_step_on_the_live_rag_scene_shows_the_real_retrieval(rag_scene, capsys):
    from llmviz.engine.runtime import Engine
    from llmviz.scenes import rag_live
    from llmviz.scenes.chapters.apply import apply_chapter_moment
    from scene_support import shown_close

    scene, renderer = rag_scene
    values = rag_live.chapter_values_of(scene)()
    assert set(values) == set(RAG_VALUES)
    runner = ChapterRunner(_chapter_19(), None, viewport=SIZE)
    runner.bind_scene(scene)
    runner.go_to_step_end(1)
    text = runner.moment().text.text
    assert "{" not in text and not runner.moment().text.references
    asked = _asked(capsys)
    hits = asked["retrieved"]
    assert asked["question"] == QUESTION and f'turns "{QUESTION}" into one vector of 384 numbers' in text
    assert f"each of the store's {asked['chunks_in_store']} chunks" in text
    m = re.search(r"similarity, \[([^\]]+)\]: the best is from ([\w.-]+)\.", text)
    assert m, text
    scores = [_number(s) for s in m.group(1).split(", ")]
    assert len(scores) == len(hits) and all(shown_close(s, h["score"]) for s, h in zip(scores, hits))
    assert m.group(2) == hits[0]["file"]
    m = re.search(r'Its answer, "([^"]+)", gives (\d+(?:\.\d+)?)% of its attention to passage #(\d+), from ([\w.-]+) with a '
                  r'score of (\d+(?:\.\d+)?)', text)
    assert m, text
    answer, share, rank, file, score = m.groups()
    source = max(hits, key=lambda h: h["attention_share"])
    assert answer == asked["answer"] and int(rank) == source["rank"] and file == source["file"]
    assert shown_close(_number(share), 100 * source["attention_share"]) and shown_close(_number(score), source["score"])
    assert source["text"].find("Lyssandor") >= 0 and "Lyssandor" in answer      # the card that holds the fact
    m = re.search(r'first word "(\w+)" has probability (\d+(?:\.\d+)?)', text)
    assert m and m.group(1) == asked["tokens"][0]["token"]
    assert shown_close(_number(m.group(2)), asked["tokens"][0]["probability"])

    # `llmviz render --no-ui --scene rag --chapter 19 --step 2`: the scene at the step's camera, drawn
    engine = Engine(scene.world, scene.start_camera(SIZE), renderer)
    scene.attach(engine)
    camera = apply_chapter_moment(scene, engine, 19, 2)
    assert np.allclose(camera.position, rag_live.PRESETS[runner.current.steps[1].camera.preset][0])
    engine.frame(0.0)
    assert renderer.read_pixels()[:, :, :3].any()
    with pytest.raises(ValueError, match=r"^--chapter 19 --step 3: chapter 19 shows jamba-tiny, not rag: "
                                         r"use --scene jamba-tiny$"):
        apply_chapter_moment(scene, engine, 19, 3)
