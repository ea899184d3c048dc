"""A user's model folder, live in its scene: text through the folder's tokenizer, generation token by token, and
attention maps pooled to fit — against transformers' own greedy generate and forward pass on the same weights."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
headless = pytest.importorskip("llmviz.engine.render.headless")

from llmviz.models import hf_record  # noqa: E402
from llmviz.scenes.folder_live import CONTEXT, FolderLive  # noqa: E402
from llmviz.scenes.registry import build_scene  # noqa: E402

WORDS = "the quick brown fox jumps over a lazy dog and cat sat on mat".split()
TOL = 1e-5


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A random-weight Llama with a word-level tokenizer, saved as a user's folder would be."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    torch.manual_seed(5)
    config = transformers.LlamaConfig(vocab_size=len(WORDS) + 1, hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=64, eos_token_id=None, bos_token_id=None)
    model = transformers.LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("llama-words")
    model.save_pretrained(path, safe_serialization=True)
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(path)
    return model, path, vocab


@pytest.fixture()
def scene(folder):
    renderer = headless.headless_renderer((320, 180))
    built = build_scene(f"folder:{folder[1]}", renderer)
    yield built
    built.close()
    renderer.release()


def test_text_then_generation_token_by_token_is_transformers_greedy_generate(folder, scene):
    model, _, vocab = folder
    live = scene.live
    assert isinstance(live, FolderLive) and live.wait()
    assert scene.model.layout.rows[scene.model.layout.index("logits")] == CONTEXT   # rows for what is generated
    live.set_text("the lazy dog")
    assert live.wait()
    assert live.ids == [vocab["the"], vocab["lazy"], vocab["dog"]] and live.strings == ["the", "lazy", "dog"]
    for _ in range(4):
        assert live.step()
        assert live.wait()
    with torch.no_grad():
        expect = model.generate(torch.tensor([live.ids[:3]]), max_new_tokens=4, do_sample=False,
                                pad_token_id=0)[0].tolist()
        logits = model(torch.tensor([live.ids])).logits[0].numpy()
    assert live.ids == expect and len(live.generated) == 4
    np.testing.assert_allclose(live.trace["logits"], logits, atol=TOL, rtol=TOL)
    # each generated token's probability is what the model gave it one position earlier
    probs = torch.softmax(torch.tensor(logits), -1).numpy()
    for k, (name, p) in enumerate(live.generated):
        position = 2 + k
        assert name == WORDS[live.ids[position + 1] - 1]
        assert p == pytest.approx(float(probs[position, live.ids[position + 1]]), abs=1e-5)
    assert scene.model.has_data("logits") and live.values_version >= 5
    # hover: a cell of the last pass reads the recorded number; a row past the tokens is empty
    from llmviz.scenes.inspect import inspect_cell

    slot = scene.model.slot_of("logits")
    info = inspect_cell(scene.model, live, slot, (6, 4))
    assert info.value == pytest.approx(float(logits[6, 4]), abs=TOL) and "recorded" in info.note
    assert inspect_cell(scene.model, live, slot, (20, 4)).value is None


def test_generation_stops_where_the_scene_has_no_more_rows(scene):
    live = scene.live
    assert live.wait()
    live.capacity = len(live.ids)
    assert not live.step() and "holds" in live.stopped
    live.toggle_play()
    assert not live.playing


def test_a_bad_input_is_a_message_on_the_panel_not_a_crash(folder, scene):
    live = scene.live
    assert live.wait()
    live.set_text("")
    live.wait()
    assert live.error and "no tokens" in live.error


def test_maps_too_big_to_keep_are_pooled_and_the_scene_says_so(folder, monkeypatch):
    _, path, _ = folder
    opened = hf_record.open_folder(path)
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    need = hf_record.recorded_bytes(opened.config, len(ids))
    streams = hf_record.recorded_bytes(opened.config, len(ids), attention=False)
    full_maps = {k: v for k, v in hf_record.record(opened, ids).items() if "softmax" in k}
    monkeypatch.setattr(hf_record, "MAX_RECORDED_BYTES", (need + streams) // 2)
    monkeypatch.setattr("llmviz.scenes.recorded.DEFAULT_TEXT", " ".join(WORDS[:9]))
    renderer = headless.headless_renderer((320, 180))
    built = build_scene(f"folder:{path}", renderer)
    try:
        assert "down-sampled" in built.status and "2x2" in built.status
        live = built.live
        live.wait()
        key = "blocks.1.attn.head.3.softmax"
        drawn = live.trace[key]          # as the block shows it: each cell the mean of its 2 × 2 block
        assert drawn.shape == (9, 9)
        source = full_maps[key]
        assert drawn[4, 1] == pytest.approx(source[4:6, 0:2].mean(), abs=1e-6)
        assert drawn[8, 8] == pytest.approx(source[8, 8], abs=1e-6)      # the last, partial block: one cell
    finally:
        built.close()
        renderer.release()
