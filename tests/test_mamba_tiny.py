"""mamba-tiny: the shipped weights are a transformers MambaForCausalLM, and llmviz's traced forward
(models/sim/mamba_trace.py) computes what transformers computes — logits, hidden states, the
mixer's intermediates, the final conv and SSM states, the recurrent form — with the scan's
intermediates and the implicit attention checked against formulas recomputed here in numpy.
Training is deterministic from a seed; the spec counts exactly transformers' parameters."""
import math

import numpy as np
import pytest
from tiny_model_support import (
    assert_bad_tokens_fail_in_one_line, assert_damaged_file_is_refused, assert_every_array_names_its_axes,
    assert_ids_are_the_blocks, assert_implicit_attention_reproduces_y, assert_logits_and_hidden_states_equal,
    assert_mamba_final_states_equal_cache, assert_mamba_projections, assert_mamba_weights_are_the_slices,
    assert_models_command_lists, assert_shipped_file_loads_into, assert_spec_counts_every_parameter,
    assert_state_shapes_are_transformers, assert_the_mamba_recurrent_form_gives_the_full_logits,
    assert_training_is_deterministic, assert_transformers_own_decoding_agrees, causal_conv, close, hf_forward,
    layout_blocks, model_fixture, random_tokens, recording, rms, selective_scan, silu, spec_fixture, transformers)

from llmviz.models.sim import mamba_model, mamba_trace, moe_corpus, train_mamba
from llmviz.scenes.cli.main import main

LENGTHS = (1, 3, 4, 17, 64)          # shorter than, equal to and longer than the conv width

model = model_fixture(mamba_model.load_mamba)
spec = spec_fixture("mamba-tiny")


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_load_into_mamba_for_causal_lm(model):
    assert type(model) is transformers.MambaForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.state_size, cfg.conv_kernel, cfg.expand,
            cfg.time_step_rank) == (2, 64, 16, 4, 2, math.ceil(64 / 16))
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.use_mambapy is False
    # independently of load_mamba: the file's tensors into a fresh transformers model
    fresh = transformers.MambaForCausalLM(transformers.MambaConfig(
        vocab_size=96, hidden_size=64, state_size=16, num_hidden_layers=2, expand=2, conv_kernel=4,
        time_step_rank=4, tie_word_embeddings=True, use_mambapy=False))
    assert_shipped_file_loads_into(fresh, model, mamba_model.shipped_weights_path(), tied_head="lm_head.weight")
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr()


def test_state_shapes_are_transformers_names_and_shapes(model):
    assert_state_shapes_are_transformers(mamba_model, model, leave_out={"lm_head.weight"})


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    assert_spec_counts_every_parameter(spec, model, at_most=300_000)
    assert spec.architecture.tied_embeddings and spec.kind == "ssm"
    assert "trained by llmviz (llmviz train mamba-tiny)" in spec.sources


def test_models_command_lists_it_with_that_count(capsys, model):
    assert_models_command_lists(capsys, "mamba-tiny", model)


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    assert_damaged_file_is_refused(tmp_path, mamba_model.load_mamba, mamba_model.state_tensors(model),
                                   "backbone.layers.0.mixer.A_log", np.s_[:, :8], "mamba-tiny", n_layers=2)


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    # transformers' hidden_states: each layer's output, then the final norm's
    assert_logits_and_hidden_states_equal(model, mamba_trace, length, resid="resid1")


def test_mixer_intermediates_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of each projection."""
    tokens = random_tokens(23, seed=7)
    parts = ("norm", "mixer.in_proj", "mixer.x_proj", "mixer.out_proj")
    modules = {f"{i}.{part}": f"backbone.layers.{i}.{part}"
               for i in range(len(model.backbone.layers)) for part in parts}
    with recording(model, modules) as seen:
        hf_forward(model, tokens, use_cache=False)
    trace = mamba_trace.trace(model, tokens)
    inner, r, n = model.config.intermediate_size, model.config.time_step_rank, model.config.state_size
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        close(trace[f"{p}.ln1.out"], seen[f"{i}.norm"][1], "norm")
        assert_mamba_projections(trace, p, seen[f"{i}.mixer.in_proj"], seen[f"{i}.mixer.x_proj"],
                                 seen[f"{i}.mixer.out_proj"], inner, r, n)


def test_scan_intermediates_follow_the_formulas(model):
    """Recomputed here in float64 numpy from the trace's inputs and the weights (formulas.md)."""
    tokens = random_tokens(19, seed=3)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    eps = model.config.layer_norm_epsilon
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        resid_in = tr["embed.out"] if i == 0 else tr[f"blocks.{i - 1}.resid1"]
        close(tr[f"{p}.ln1.rms"], rms(resid_in, eps), "rms")
        assert w[f"{p}.mamba.conv.weight"].shape[1] == model.config.conv_kernel
        conv = causal_conv(tr[f"{p}.mamba.x"], w[f"{p}.mamba.conv.weight"], w[f"{p}.mamba.conv.bias"])
        close(tr[f"{p}.mamba.conv"], conv, "causal depthwise conv")
        close(tr[f"{p}.mamba.conv_act"], silu(conv), "SiLU")
        dt = np.logaddexp(0, tr[f"{p}.mamba.dt_low"] @ w[f"{p}.mamba.dt.weight"].T.astype(np.float64)
                          + w[f"{p}.mamba.dt.bias"])
        close(tr[f"{p}.mamba.dt"], dt, "softplus dt")
        A = -np.exp(w[f"{p}.mamba.A_log"].astype(np.float64))
        dA, dB = np.exp(dt[:, :, None] * A), dt[:, :, None] * tr[f"{p}.mamba.B"][:, None, :]
        close(tr[f"{p}.mamba.dA"], dA, "dA")
        close(tr[f"{p}.mamba.dB"], dB, "dB")
        u = tr[f"{p}.mamba.conv_act"].astype(np.float64)
        hs = selective_scan(dA, dB, u)
        close(tr[f"{p}.mamba.h"], hs, "state h")
        y = np.einsum("tin,tn->ti", hs, tr[f"{p}.mamba.C"]) + w[f"{p}.mamba.D"] * u
        close(tr[f"{p}.mamba.y"], y, "y")
        z = tr[f"{p}.mamba.z"].astype(np.float64)
        close(tr[f"{p}.mamba.gated"], y * silu(z), "gated")


@pytest.mark.parametrize("length", (1, 3, 4, 30))
def test_final_states_equal_transformers_cache(model, length):
    inner = model.config.intermediate_size
    assert_mamba_final_states_equal_cache(model, mamba_trace, length, ssm_shape=(inner, model.config.state_size),
                                          conv_shape=(inner, model.config.conv_kernel))


def test_the_recurrent_form_gives_the_full_forward_logits(model):
    # token by token, then chunks carried by the state, as a long sequence streams
    assert_the_mamba_recurrent_form_gives_the_full_logits(model, mamba_trace)


def test_transformers_own_cached_decoding_agrees_with_our_steps(model):
    assert_transformers_own_decoding_agrees(model, mamba_trace, random_tokens(12, seed=5), prefix=5)


@pytest.mark.parametrize("length", (1, 9, 48))
def test_implicit_attention_reproduces_y(model, length):
    tokens = random_tokens(length, seed=200 + length)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}.mamba"
        alpha = tr[f"{p}.alpha"]
        assert alpha.shape == (model.config.intermediate_size, length, length)
        assert_implicit_attention_reproduces_y(alpha, tr[f"{p}.conv_act"], w[f"{p}.D"], tr[f"{p}.y"])  # causal


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    """What the scene draws is fed by the trace as the scene shows it (scenes/ssm_live.py): every recorded
    array under its id, the scan's (T, …) arrays split into one block per token, and nothing left unfed."""
    from llmviz.scenes.ssm_live import scene_arrays

    tokens = random_tokens(11, seed=1)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    blocks = layout_blocks(spec, len(tokens))
    shown = scene_arrays(tr, 2)
    per_token = {f"blocks.{i}.mamba.{s}" for i in range(2) for s in ('dA', 'dB', 'h')}   # drawn as .0, .1, …
    assert per_token <= set(tr) and not per_token & set(blocks)
    assert {f"blocks.0.mamba.h.{t}" for t in range(len(tokens))} <= set(blocks)
    assert_ids_are_the_blocks((set(shown) - per_token) | set(w), blocks, shown, w)
    assert_every_array_names_its_axes(tr)


def test_weights_are_the_slices_of_transformers_tensors(model):
    w, sd = mamba_trace.weights(model), model.state_dict()
    m = "backbone.layers.1.mixer"
    inner, r, n = model.config.intermediate_size, model.config.time_step_rank, model.config.state_size
    assert_mamba_weights_are_the_slices(w, sd, "blocks.1.mamba", m)
    assert w["blocks.1.mamba.x.weight"].shape == (inner, 64) and w["blocks.1.mamba.B.weight"].shape == (n, inner)
    assert w["blocks.1.mamba.dt_low.weight"].shape == (r, inner)
    assert np.array_equal(w["lm_head.weight"], w["embed.tok.weight"])


def test_bad_tokens_fail_in_one_line(model):
    assert_bad_tokens_fail_in_one_line(mamba_trace, model)


# ---- training ------------------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    assert_training_is_deterministic(train_mamba, mamba_model)


def test_train_command_writes_a_loadable_file_and_shows_progress(capsys, tmp_path):
    out = tmp_path / "m.safetensors"
    assert main(["train", "mamba-tiny", "--steps", "2", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "training mamba-tiny" in printed and "step     2/2" in printed and "held-out loss" in printed
    loaded = mamba_model.load_mamba(out)
    assert type(loaded) is transformers.MambaForCausalLM


def test_train_command_refuses_a_bad_out_before_training(capsys, tmp_path):
    code = main(["train", "mamba-tiny", "--steps", "2", "--out", str(tmp_path / "no" / "such" / "m.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--out" in err
    code = main(["train", "mamba-tiny", "--steps", "2", "--out", str(tmp_path / "m.bin")])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
