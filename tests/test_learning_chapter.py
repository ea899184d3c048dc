"""nano-GPT's training recording and the chapter that replays it: the snapshots reproduce the recorded losses, the
first correct step is the brute-force one, recording is reproducible and leaves the training as it was."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmviz.common.atomic import write_atomic
from llmviz.models.sim import sort_task, train_nanogpt
from llmviz.models.sim.nanogpt_record import (LOSS_FILE, Recorder, RecordingError, load_snapshot, read_losses,
                                              shipped_recording)

FOLDER = shipped_recording()


@pytest.fixture(scope="module")
def table():
    return read_losses(FOLDER)


@pytest.fixture(scope="module")
def snapshots(table):
    torch.set_num_threads(2)
    return {int(s): load_snapshot(FOLDER, int(s)) for s in table["snapshot_steps"]}


def _loss_by_hand(model, inputs):
    """Cross-entropy of the sorted answer, computed here: the log-probability of each answer letter given the
    letters before it, averaged over the answer positions (the input positions are not scored)."""
    x = torch.tensor([list(i) + sorted(i)[:-1] for i in inputs])
    answer = torch.tensor([sorted(i) for i in inputs])
    with torch.inference_mode():
        logp = F.log_softmax(model(x).double(), dim=-1)[:, sort_task.INPUT_LENGTH - 1:]
    return float(-logp.gather(-1, answer[..., None]).mean())


def test_a_small_recording_of_log_spaced_snapshots(table):
    steps = table["snapshot_steps"]
    assert 20 <= len(steps) <= 40 and steps[0] == 0 and steps[-1] == len(table["loss"]) == train_nanogpt.DEFAULT_STEPS
    gaps = np.diff(steps)
    assert gaps[-1] > 50 * gaps[0]  # dense early, sparse late: log-spaced
    size = sum(FOLDER.joinpath(f"step-{s:05d}.safetensors").stat().st_size for s in steps) \
        + FOLDER.joinpath(LOSS_FILE).stat().st_size
    assert size < 4_000_000  # about 175 KB a snapshot: half precision


def test_each_snapshot_reproduces_its_recorded_held_out_loss(table, snapshots):
    _, held = sort_task.split_inputs()
    for step, recorded in zip(table["snapshot_steps"], table["snapshot_loss"]):
        assert _loss_by_hand(snapshots[int(step)], held) == pytest.approx(float(recorded), rel=1e-4, abs=1e-7)


def test_each_snapshot_reproduces_the_training_loss_of_its_step(table, snapshots):
    """The batch of step s drawn again from the recipe's seed; the snapshot taken at s scores it as training did
    (up to the float16 rounding of the stored weights)."""
    train_inputs, _ = sort_task.split_inputs()
    draw = torch.Generator().manual_seed(train_nanogpt.DEFAULT_SEED + 1)
    batches = [torch.randint(len(train_inputs), (train_nanogpt.BATCH_SIZE,), generator=draw)
               for _ in range(len(table["loss"]))]
    checked = 0
    for step in table["snapshot_steps"]:
        if step >= len(batches):
            continue
        inputs = [train_inputs[i] for i in batches[int(step)].tolist()]
        got, recorded = _loss_by_hand(snapshots[int(step)], inputs), float(table["loss"][step])
        assert got == pytest.approx(recorded, rel=0.02, abs=2e-3), int(step)
        checked += 1
    assert checked == len(table["snapshot_steps"]) - 1
    assert table["loss"][0] > 1.0 > 0.01 > table["loss"][-1]


def _first_correct_by_brute_force(snapshots, letters):
    """The first snapshot whose greedy answer, one forward pass per letter, is the sorted input."""
    for step in sorted(snapshots):
        seq = list(letters)
        for _ in range(sort_task.INPUT_LENGTH):
            with torch.inference_mode():
                logits = snapshots[step](torch.tensor([seq]))[0, -1]
            seq.append(int(torch.argmax(logits)))
        if seq[sort_task.INPUT_LENGTH:] == sorted(letters):
            return step
    return None


@pytest.mark.parametrize("text", ["CBABBC", "CCCAAA", "BACBAC"])
def test_the_chapters_first_correct_step_is_the_brute_force_one(snapshots, text):
    from llmviz.scenes.chapters.recording import RecordingReplay

    letters = sort_task.encode(text)
    replay = RecordingReplay("nano-gpt")
    try:
        live = {"tokens": np.array(letters)}
        assert replay.values(live, None) is None  # asked, computing on the worker
        assert replay.wait(240), replay.error
        values = replay.values(live, "first_correct")
        assert replay.wait(240), replay.error
        values = replay.values(live, "first_correct")
    finally:
        replay.close()
    expected = _first_correct_by_brute_force(snapshots, letters)
    assert values["record.first_correct"][0] == expected
    assert values["record.step"][0] == expected
    assert sort_task.decode(values["record.output"].astype(int)) == "".join(sorted(text))
    # the shown blocks are that snapshot's: its weights and its own trace
    model = snapshots[expected]
    assert np.array_equal(values["embed.tok.weight"], model.embed.tok.weight.detach().numpy())
    seq = letters + sorted(letters)[:-1]
    with torch.inference_mode():
        probs = torch.softmax(model(torch.tensor([seq]))[0], -1).numpy()
    assert np.allclose(values["probs"], probs, atol=1e-5)


def test_recording_is_reproducible_and_leaves_training_unchanged(tmp_path):
    results = []
    for name in ("a", "b"):
        recorder = Recorder(30)
        result = train_nanogpt.train(seed=3, steps=30, log=lambda line: None, record=recorder)
        recorder.write(tmp_path / name, {"seed": 3, "steps": 30})
        results.append(result)
    plain = train_nanogpt.train(seed=3, steps=30, log=lambda line: None)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(files) > 10
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for a, b in zip(results[0].model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)
    last = load_snapshot(tmp_path / "a", 30)
    for a, b in zip(last.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b.half().float())


def test_a_broken_recording_is_one_line(tmp_path):
    write_atomic(tmp_path / LOSS_FILE, b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(RecordingError) as err:
        read_losses(tmp_path)
    assert str(tmp_path / LOSS_FILE) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RecordingError) as err:
        load_snapshot(tmp_path, 7)
    assert "step-00007.safetensors" in str(err.value)


def test_the_chapters_replay_the_recording_in_the_runner():
    """Chapters 20 and 21 read and played: snapshot steps resolve, the text fills from the recording's values."""
    from llmviz.scenes.chapters.format import load_chapters, model_names
    from llmviz.scenes.chapters.runner import ChapterRunner, scene_layout

    chapters = [c for c in load_chapters(model_names, lang="en") if c.recording == "nano-gpt"]
    assert len(chapters) == 2
    from llmviz.models.sim.nanogpt import load_nanogpt

    shipped = load_nanogpt()
    live = {**dict(shipped.weights()), **dict(shipped.trace(sort_task.encode("CBABBC")))}  # what the live scene has
    runner = ChapterRunner(chapters, scene_layout("nano-gpt"), lambda: live)
    count = len(read_losses(FOLDER)["snapshot_steps"])
    try:
        for index, chapter in enumerate(chapters):
            runner.go_to(index)
            for k, step in enumerate(chapter.steps):
                if step.scene is not None:
                    continue  # another model's scene: no live values, no recording
                runner.go_to_step_end(k)
                moment = runner.moment()
                while moment.text is None:
                    assert runner.replays["nano-gpt"].wait(240), runner.replays["nano-gpt"].error
                    moment = runner.moment()
                assert "{" not in moment.text.text
                assert (moment.plot is not None) == (step.plot is not None)
                if step.plot is not None:
                    assert len(moment.plot[0]) == train_nanogpt.DEFAULT_STEPS
                if step.snapshot is None:
                    assert moment.snapshot is None and runner.snapshot_arrays(moment) is None
                else:
                    expected = count - 1 if step.snapshot == -1 else moment.snapshot
                    assert moment.snapshot == (step.snapshot if isinstance(step.snapshot, int) and
                                               step.snapshot >= 0 else expected)
                    arrays = runner.snapshot_arrays(moment)
                    assert arrays is not None and "blocks.2.attn.head.0.softmax" in arrays
    finally:
        runner.close()


def test_a_recording_that_cannot_load_is_a_chapter_error_naming_the_step(tmp_path):
    from llmviz.scenes.chapters.format import ChapterError, load_chapters, model_names
    from llmviz.scenes.chapters.recording import RecordingReplay
    from llmviz.scenes.chapters.runner import ChapterRunner, scene_layout

    chapter = next(c for c in load_chapters(model_names, lang="en") if c.recording == "nano-gpt")
    runner = ChapterRunner([chapter], scene_layout("nano-gpt"), lambda: {"tokens": np.array([0, 1, 2, 0, 1, 2])})
    runner.replays["nano-gpt"] = RecordingReplay("nano-gpt", folder=tmp_path)  # an empty folder
    try:
        assert runner.moment().text is None  # asked
        assert not runner.replays["nano-gpt"].wait(60)
        with pytest.raises(ChapterError) as err:
            runner.moment()
        assert err.value.file == chapter.path and err.value.line == chapter.steps[0].line
        assert LOSS_FILE in err.value.problem
    finally:
        runner.close()
