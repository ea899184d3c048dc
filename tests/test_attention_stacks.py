"""The heads view for the live models with stacks of their own (scenes/attention_stacks.py): vit-tiny in
the explorer (H opens it on the live trace; its 257 tokens drawn as block means; the clustering pooled over
the shipped pictures equals the analysis of those pictures traced directly), and the stacks found in the
traces of the models with two (llava-tiny's vision tower and language model; whisper-tiny's encoder and
decoder, its cross-attention left out)."""
import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models import attention_analysis  # noqa: E402
from llmviz.scenes import attention_stacks, heads_view  # noqa: E402


@contextlib.contextmanager
def heads_opened(scene: str, kind: str):
    """An explorer on `scene` (headless) with its heads view open and the first analysis in."""
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.explorer import Explorer

    renderer = headless.HeadlessRenderer((1280, 720))
    ex = Explorer(renderer, scene, adaptive_quality=False)
    try:
        ex.wait_for_scene()
        assert ex.wait_for_values()
        heads = ex.session.heads_mode
        assert heads is not None and heads.kind == kind
        ex.do("toggle_heads")
        ex.frame(1 / 60)
        assert heads.open and heads.wait(240), heads.error
        yield ex, heads
    finally:
        ex.close()
        renderer.release()


def test_a_long_input_is_drawn_as_block_means_of_every_entry():
    rng = np.random.default_rng(0)
    values = rng.random((257, 257))
    factor = heads_view.pool_factor(257)
    assert factor == 5
    shown = heads_view.pooled(values, factor)
    assert shown.shape == (52, 52)
    assert shown[3, 7] == pytest.approx(values[15:20, 35:40].mean())
    assert shown[-1, -1] == pytest.approx(values[255:, 255:].mean())      # the partial last block: its cells
    assert heads_view.pooled(values[:40, :40], heads_view.pool_factor(40)) is not None


def test_whisper_stacks_are_its_encoder_and_decoder_without_cross_attention():
    trace = {f"{p}blocks.{b}.{a}.head.{h}.softmax": None for p in ("audio.", "") for b in range(2)
             for a in ("attn", "cross_attn") for h in range(4)}
    assert attention_stacks.stacks_in(trace) == ["audio", ""]
    assert attention_stacks.stack_name("audio", "") == "decoder (self-attention)"


def test_h_opens_vit_tinys_heads_view_clustered_over_the_shipped_pictures():
    from llmviz.models.sim import vit_image, vit_model, vit_trace
    from llmviz.scenes.vit_live import SAMPLE_IMAGES, sample_path

    with heads_opened("vit-tiny", "vision") as (ex, heads):
        result = heads.result
        live = ex.session.scene.live.session.trace
        current = result.current
        assert current.ids[1] == [f"blocks.1.attn.head.{h}.softmax" for h in range(len(current.ids[1]))]
        assert np.array_equal(current.layers[1][2], live["blocks.1.attn.head.2.softmax"])
        assert current.labels[0] == "[CLS]" and result.pool == 5 and result.flow is None and not result.ribbons
        # the batch, traced here directly: the picture on screen, then the other shipped pictures
        model = vit_model.load_vit()
        size = model.config.image_size
        batch = [current.distributions]
        tokens = [current.tokens]
        for name in SAMPLE_IMAGES[1:attention_stacks.BATCH_SAMPLES]:
            trace = vit_trace.trace(model, vit_image.preprocess(vit_image.read_image(str(sample_path(name))), size))
            layers = [np.stack([trace[f"blocks.{b}.attn.head.{h}.softmax"] for h in range(len(current.ids[b]))])
                      for b in range(len(current.ids))]
            batch.append([attention_analysis.as_distributions(layer) for layer in layers])
            tokens.append(list(range(len(current.tokens))))
        expected = attention_analysis.analyse(batch, tokens)
        assert result.analysis.inputs == len(batch)
        np.testing.assert_allclose(result.analysis.distances, expected.distances, atol=1e-6)
        assert np.array_equal(result.analysis.clusters, expected.clusters)
        assert [p.name for p in result.analysis.patterns] == [p.name for p in expected.patterns]
        np.testing.assert_allclose(result.analysis.rollout, expected.rollout, atol=1e-6)
        for _ in range(3):   # the window draws it (pooled tiles, the note, the dendrogram)
            ex.frame(1 / 60)
            ex.renderer.ctx.finish()
            ex.presented()
        assert "blocks.0.attn.head.0.softmax" in heads.panel.tile_boxes


def test_llmviz_attention_exports_a_picture_models_heads_and_refuses_bad_files_in_one_line(tmp_path, capsys):
    from llmviz.scenes.cli.main import main
    from llmviz.scenes.vit_live import sample_path

    out = tmp_path / "vit.npz"
    assert main(["attention", "--model", "vit-tiny", "--input", str(sample_path("ring.png")), "--out", str(out)]) == 0
    with np.load(out) as data:
        names = set(data.files)
        layer = next(n for n in names if "0" in n and data[n].ndim == 3)
        assert data[layer].shape[1:] == (257, 257)
        np.testing.assert_allclose(data[layer].sum(-1), 1.0, atol=1e-5)   # softmax rows, as traced
    capsys.readouterr()
    for argv, named in ((["--input", str(tmp_path / "none.png")], "no such file"),
                        (["--input", __file__], "--input"),
                        (["--input", str(sample_path("ring.png")), "--stack", "audio"], "--stack")):
        assert main(["attention", "--model", "vit-tiny", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert named in err and "\n" not in err


def test_a_live_folders_heads_view_shows_transformers_own_attention(tmp_path):
    """A random Llama saved as a user's folder: the heads view's matrices are transformers' attentions on the
    session's token ids; clustered over that input and its variants (the view says so), which the folder's
    worker recorded: the clusters and names equal the analysis of transformers' own attentions on the same
    inputs; rollout ribbons offered."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "the quick brown fox jumps over a lazy dog".split()
    torch.manual_seed(3)
    config = transformers.LlamaConfig(vocab_size=len(words) + 1, hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=64, eos_token_id=None, bos_token_id=None)
    model = transformers.LlamaForCausalLM(config).eval()
    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(tmp_path)
    with heads_opened(f"folder:{tmp_path}", "folder") as (ex, heads):
        ids = list(ex.session.scene.live.session.ids)
        eager = transformers.LlamaForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
        with torch.no_grad():
            expected = eager(torch.tensor([ids]), output_attentions=True).attentions
        result = heads.result
        variants = attention_stacks.folder_variants(ids, heads.seed)
        assert result.current.tokens == ids and result.analysis.inputs == 1 + len(variants) >= 3
        assert "variants" in result.note and "reversed" in result.note
        for layer in range(2):
            np.testing.assert_allclose(result.current.layers[layer], expected[layer][0].numpy(), atol=1e-5)
        assert "rollout" in result.ribbons
        inputs = [ids, *map(list, variants)]
        with torch.no_grad():
            maps = [[a[0].numpy() for a in eager(torch.tensor([i]), output_attentions=True).attentions]
                    for i in inputs]
        reference = attention_analysis.analyse(maps, inputs)
        np.testing.assert_array_equal(result.analysis.clusters, reference.clusters)
        assert [p.name for p in result.analysis.patterns] == [p.name for p in reference.patterns]
        np.testing.assert_allclose(result.analysis.distances, reference.distances, atol=1e-5)


def test_a_folders_variants_keep_its_first_token_and_its_tokens():
    ids = [7, 3, 9, 4, 4, 1, 8]
    variants = attention_stacks.folder_variants(ids, seed=2)
    assert len(variants) == 3 and all(v[0] == 7 for v in variants)
    assert variants[0] == (7, 8, 1, 4, 4, 9, 3)
    assert sorted(variants[1]) == sorted(ids) and variants[1] != variants[0]
    assert variants[2] == (7, 3, 9, 7, 3, 9)
    assert attention_stacks.folder_variants(ids, seed=2) == variants      # seeded
    assert attention_stacks.folder_variants([5, 6], seed=0) == [(5, 5)]   # no reversal, no shuffle of one token
