"""mamba-tiny: the shipped weights are a transformers MambaForCausalLM, and llmviz's traced forward
(models/sim/mamba_trace.py) computes what transformers computes — logits, hidden states, the
mixer's intermediates, the final conv and SSM states, the recurrent form — with the scan's
intermediates and the implicit attention checked against formulas recomputed here in numpy.
Training is deterministic from a seed; the spec counts exactly transformers' parameters."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from llmviz.models.params import count_params, human  # noqa: E402
from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import mamba_model, mamba_trace, moe_corpus, train_mamba  # noqa: E402
from llmviz.models.sim.weights_file import WeightsError  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402

TOL = dict(atol=1e-5, rtol=1e-5)
LENGTHS = (1, 3, 4, 17, 64)          # shorter than, equal to and longer than the conv width


@pytest.fixture(scope="module")
def model():
    return mamba_model.load_mamba()


@pytest.fixture(scope="module")
def spec():
    return load_registry(include_user=False).get("mamba-tiny")


def random_tokens(length: int, seed: int) -> list[int]:
    return torch.randint(len(moe_corpus.ALPHABET), (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def hf_forward(model, tokens, **kwargs):
    with torch.inference_mode():
        return model(torch.tensor([tokens]), **kwargs)


def close(ours, theirs, what):
    np.testing.assert_allclose(ours, np.asarray(theirs), err_msg=what, **TOL)


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_load_into_mamba_for_causal_lm(model):
    from safetensors.torch import load_file

    assert type(model) is transformers.MambaForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.state_size, cfg.conv_kernel, cfg.expand,
            cfg.time_step_rank) == (2, 64, 16, 4, 2, math.ceil(64 / 16))
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.use_mambapy is False
    # independently of load_mamba: the file's tensors into a fresh transformers model
    fresh = transformers.MambaForCausalLM(transformers.MambaConfig(
        vocab_size=96, hidden_size=64, state_size=16, num_hidden_layers=2, expand=2, conv_kernel=4,
        time_step_rank=4, tie_word_embeddings=True, use_mambapy=False))
    missing, unexpected = fresh.load_state_dict(load_file(str(mamba_model.shipped_weights_path())), strict=False)
    assert missing == ["lm_head.weight"] and unexpected == []  # the tied head is stored once
    fresh.tie_weights()
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr()


def test_state_shapes_are_transformers_names_and_shapes(model):
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert mamba_model.state_shapes(mamba_model.our_config(model)) == theirs


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    theirs = sum(p.numel() for p in model.parameters())
    assert theirs <= 300_000
    assert count_params(spec).total == theirs
    assert spec.architecture.tied_embeddings and spec.kind == "ssm"
    assert "trained by llmviz (llmviz train mamba-tiny)" in spec.sources


def test_models_command_lists_it_with_that_count(capsys, model):
    assert main(["models"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["mamba-tiny"]]
    assert len(rows) == 1, rows
    assert human(sum(p.numel() for p in model.parameters())) in rows[0].split(), rows[0]


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    import json

    from safetensors.torch import save

    state = mamba_model.state_tensors(model)
    state["backbone.layers.0.mixer.A_log"] = state["backbone.layers.0.mixer.A_log"][:, :8].contiguous()
    info = {"model": "mamba-tiny", "config": {"n_layers": 2}}
    path = tmp_path / "bad.safetensors"
    path.write_bytes(save(state, metadata={"llmviz": json.dumps(info)}))
    with pytest.raises(WeightsError, match="A_log.*shape"):
        mamba_model.load_mamba(path)


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    tokens = random_tokens(length, seed=length)
    theirs = hf_forward(model, tokens, output_hidden_states=True, use_cache=False)
    trace = mamba_trace.trace(model, tokens)
    close(trace["logits"], theirs.logits[0], "logits")
    close(trace["probs"], torch.softmax(theirs.logits[0], -1), "probs")
    # transformers' hidden_states: each layer's output, then the final norm's
    hidden = theirs.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1
    for i in range(model.config.num_hidden_layers):
        close(trace[f"blocks.{i}.resid1"], hidden[i][0], f"layer {i} output")
    close(trace["ln_f.out"], hidden[-1][0], "final norm")


def test_mixer_intermediates_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of each projection."""
    tokens = random_tokens(23, seed=7)
    seen = {}

    def keep(name):
        def hook(module, args, output):
            seen[name] = (args[0][0].detach().clone(), output[0].detach().clone())
        return hook

    handles = []
    for i, layer in enumerate(model.backbone.layers):
        for part in ("norm", "mixer.in_proj", "mixer.x_proj", "mixer.out_proj"):
            module = model.get_submodule(f"backbone.layers.{i}.{part}")
            handles.append(module.register_forward_hook(keep(f"{i}.{part}")))
    try:
        hf_forward(model, tokens, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    trace = mamba_trace.trace(model, tokens)
    inner, r, n = model.config.intermediate_size, model.config.time_step_rank, model.config.state_size
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        close(trace[f"{p}.ln1.out"], seen[f"{i}.norm"][1], "norm")
        _, xz = seen[f"{i}.mixer.in_proj"]
        close(trace[f"{p}.mamba.x"], xz[:, :inner], "x")
        close(trace[f"{p}.mamba.z"], xz[:, inner:], "z")
        conv_act, dbc = seen[f"{i}.mixer.x_proj"]
        close(trace[f"{p}.mamba.conv_act"], conv_act, "conv_act")
        close(trace[f"{p}.mamba.dt_low"], dbc[:, :r], "dt_low")
        close(trace[f"{p}.mamba.B"], dbc[:, r:r + n], "B")
        close(trace[f"{p}.mamba.C"], dbc[:, r + n:], "C")
        gated, out = seen[f"{i}.mixer.out_proj"]
        close(trace[f"{p}.mamba.gated"], gated, "gated")
        close(trace[f"{p}.mamba.out"], out, "mixer out")


def test_scan_intermediates_follow_the_formulas(model):
    """Recomputed here in float64 numpy from the trace's inputs and the weights (formulas.md)."""
    tokens = random_tokens(19, seed=3)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    eps = model.config.layer_norm_epsilon
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        resid_in = tr["embed.out"] if i == 0 else tr[f"blocks.{i - 1}.resid1"]
        rms = np.sqrt((resid_in.astype(np.float64) ** 2).mean(-1) + eps)
        close(tr[f"{p}.ln1.rms"], rms, "rms")
        x = tr[f"{p}.mamba.x"].astype(np.float64)
        kernel, k = w[f"{p}.mamba.conv.weight"], model.config.conv_kernel
        padded = np.concatenate([np.zeros((k - 1, x.shape[1])), x])
        conv = np.stack([(padded[t:t + k] * kernel.T).sum(0) for t in range(len(x))]) + w[f"{p}.mamba.conv.bias"]
        close(tr[f"{p}.mamba.conv"], conv, "causal depthwise conv")
        close(tr[f"{p}.mamba.conv_act"], conv / (1 + np.exp(-conv)), "SiLU")
        dt = np.logaddexp(0, tr[f"{p}.mamba.dt_low"] @ w[f"{p}.mamba.dt.weight"].T.astype(np.float64)
                          + w[f"{p}.mamba.dt.bias"])
        close(tr[f"{p}.mamba.dt"], dt, "softplus dt")
        A = -np.exp(w[f"{p}.mamba.A_log"].astype(np.float64))
        dA, dB = np.exp(dt[:, :, None] * A), dt[:, :, None] * tr[f"{p}.mamba.B"][:, None, :]
        close(tr[f"{p}.mamba.dA"], dA, "dA")
        close(tr[f"{p}.mamba.dB"], dB, "dB")
        u, h, hs = tr[f"{p}.mamba.conv_act"].astype(np.float64), np.zeros(A.shape), []
        for t in range(len(tokens)):
            h = dA[t] * h + dB[t] * u[t][:, None]
            hs.append(h)
        close(tr[f"{p}.mamba.h"], np.stack(hs), "state h")
        y = np.einsum("tin,tn->ti", np.stack(hs), tr[f"{p}.mamba.C"]) + w[f"{p}.mamba.D"] * u
        close(tr[f"{p}.mamba.y"], y, "y")
        z = tr[f"{p}.mamba.z"].astype(np.float64)
        close(tr[f"{p}.mamba.gated"], y * z / (1 + np.exp(-z)), "gated")


@pytest.mark.parametrize("length", (1, 3, 4, 30))
def test_final_states_equal_transformers_cache(model, length):
    tokens = random_tokens(length, seed=100 + length)
    cache = hf_forward(model, tokens, use_cache=True).cache
    ssm, conv = mamba_trace.final_state(model, tokens)
    L, inner = model.config.num_hidden_layers, model.config.intermediate_size
    assert ssm.shape == (L, inner, model.config.state_size) and conv.shape == (L, inner, model.config.conv_kernel)
    for i in range(L):
        close(ssm[i], cache.get_recurrent_state(i)[0], f"layer {i} ssm state")
        close(conv[i], cache.get_conv_state(i)[0], f"layer {i} conv state")


def test_the_recurrent_form_gives_the_full_forward_logits(model):
    tokens = random_tokens(40, seed=11)
    full = mamba_trace.trace(model, tokens)["logits"]
    state, stepped = None, []
    for token in tokens:
        logits, state = mamba_trace.step(model, token, state)
        stepped.append(logits)
    close(np.stack(stepped), full, "token by token")
    # chunks carried by the state, as a long sequence streams
    state, parts = None, []
    for chunk in (tokens[:7], tokens[7:8], tokens[8:25], tokens[25:]):
        with torch.inference_mode():
            logits, state = mamba_trace.forward(model, torch.tensor([chunk]), state)
        parts.append(logits[0].numpy())
    close(np.concatenate(parts), full, "chunk by chunk")
    ssm, conv = mamba_trace.final_state(model, tokens)
    close(state.ssm[0], ssm, "streamed ssm state")
    close(state.conv[0], conv, "streamed conv state")


def test_transformers_own_cached_decoding_agrees_with_our_steps(model):
    tokens = random_tokens(12, seed=5)
    out = hf_forward(model, tokens[:5], use_cache=True)
    theirs = [out.logits[0, -1]]
    for token in tokens[5:]:
        out = hf_forward(model, [token], cache=out.cache, use_cache=True)
        theirs.append(out.logits[0, -1])
    full = mamba_trace.trace(model, tokens)["logits"]
    close(full[4:], torch.stack(theirs), "transformers' recurrent path")


@pytest.mark.parametrize("length", (1, 9, 48))
def test_implicit_attention_reproduces_y(model, length):
    tokens = random_tokens(length, seed=200 + length)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}.mamba"
        alpha, x = tr[f"{p}.alpha"], tr[f"{p}.conv_act"]
        assert alpha.shape == (model.config.intermediate_size, length, length)
        assert not np.triu(alpha, k=1).any()  # causal: nothing from later tokens
        y = np.einsum("its,si->ti", alpha.astype(np.float64), x) + w[f"{p}.D"] * x
        np.testing.assert_allclose(y, tr[f"{p}.y"], atol=1e-5, rtol=1e-5)


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    """What the scene draws is fed by the trace as the scene shows it (scenes/ssm_live.py): every recorded
    array under its id, the scan's (T, …) arrays split into one block per token, and nothing left unfed."""
    from llmviz.scenes.ssm_live import scene_arrays

    tokens = random_tokens(11, seed=1)
    tr, w = mamba_trace.trace(model, tokens), mamba_trace.weights(model)
    layout = layout_model(spec, n_tokens=len(tokens))
    blocks = {bid: (int(r), int(c)) for bid, r, c in zip(layout.ids, layout.rows, layout.cols)}
    shown = scene_arrays(tr, 2)
    per_token = {f"blocks.{i}.mamba.{s}" for i in range(2) for s in ('dA', 'dB', 'h')}   # drawn as .0, .1, …
    assert per_token <= set(tr) and not per_token & set(blocks)
    assert {f"blocks.0.mamba.h.{t}" for t in range(len(tokens))} <= set(blocks)
    drawn = (set(shown) - per_token) | set(w)
    assert drawn <= set(blocks), sorted(drawn - set(blocks))
    assert set(blocks) <= drawn, sorted(set(blocks) - drawn)   # nothing in the scene is left unfed
    for bid in drawn:
        array = shown[bid] if bid in shown else w[bid]
        rows, cols = blocks[bid]
        assert array.dtype in (np.float32, np.int64), bid
        assert array.shape == (rows, cols) or (array.ndim == 1 and array.size == rows * cols), (bid, array.shape)
    for bid in tr:
        assert len(tr.axes(bid)) == tr[bid].ndim


def test_weights_are_the_slices_of_transformers_tensors(model):
    w, sd = mamba_trace.weights(model), model.state_dict()
    m = "backbone.layers.1.mixer"
    inner, r, n = model.config.intermediate_size, model.config.time_step_rank, model.config.state_size
    assert np.array_equal(np.concatenate([w["blocks.1.mamba.x.weight"], w["blocks.1.mamba.z.weight"]]),
                          sd[f"{m}.in_proj.weight"].numpy())
    assert np.array_equal(np.concatenate([w["blocks.1.mamba.dt_low.weight"], w["blocks.1.mamba.B.weight"],
                                          w["blocks.1.mamba.C.weight"]]), sd[f"{m}.x_proj.weight"].numpy())
    assert w["blocks.1.mamba.x.weight"].shape == (inner, 64) and w["blocks.1.mamba.B.weight"].shape == (n, inner)
    assert w["blocks.1.mamba.dt_low.weight"].shape == (r, inner)
    assert np.array_equal(w["blocks.1.mamba.conv.weight"], sd[f"{m}.conv1d.weight"][:, 0].numpy())
    assert np.array_equal(w["lm_head.weight"], w["embed.tok.weight"])


def test_bad_tokens_fail_in_one_line(model):
    with pytest.raises(ValueError, match=r"tokens: ids must lie in \[0, 96\)"):
        mamba_trace.trace(model, [3, 96])
    with pytest.raises(ValueError, match="at least one token"):
        mamba_trace.trace(model, [])


# ---- training ------------------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    runs = [train_mamba.train(seed=3, steps=3, log=lambda line: None, report=False) for _ in range(2)]
    data = [mamba_model.safetensors_bytes(r.model, {"seed": 3}) for r in runs]
    assert data[0] == data[1]
    other = train_mamba.train(seed=4, steps=3, log=lambda line: None, report=False)
    assert mamba_model.safetensors_bytes(other.model, {"seed": 3}) != data[0]
    assert math.isfinite(runs[0].final_loss)


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
