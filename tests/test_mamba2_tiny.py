"""mamba2-tiny: the shipped weights are a transformers Mamba2ForCausalLM, and llmviz's traced forward
(models/sim/mamba2_trace.py), a token-by-token recurrence, computes what transformers' chunked SSD
scan computes — logits, hidden states, the mixer's intermediates, the final conv and SSM states,
the recurrent form, the gradients — with the scan's intermediates checked against formulas
recomputed here in numpy. Training is deterministic from a seed; the spec counts exactly
transformers' parameters; the transformers folder loads back with from_pretrained."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from transformers.models.mamba2 import modeling_mamba2  # noqa: E402

from llmviz.models.params import count_params, human  # noqa: E402
from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import mamba2_model, mamba2_trace, moe_corpus, train_mamba2  # noqa: E402
from llmviz.models.sim.weights_file import WeightsError  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402

TOL = dict(atol=1e-5, rtol=1e-5)
# Shorter than and equal to the conv width, inside one chunk, exactly one and several chunks, and
# lengths that leave a part-filled last chunk (transformers pads it).
LENGTHS = (1, 3, 4, 15, 16, 17, 40, 64)


@pytest.fixture(scope="module")
def model():
    return mamba2_model.load_mamba2()


@pytest.fixture(scope="module")
def spec():
    return load_registry(include_user=False).get("mamba2-tiny")


def random_tokens(length: int, seed: int) -> list[int]:
    return torch.randint(len(moe_corpus.ALPHABET), (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def hf_forward(model, tokens, **kwargs):
    with torch.inference_mode():
        return model(torch.tensor([tokens]), **kwargs)


def close(ours, theirs, what):
    np.testing.assert_allclose(ours, np.asarray(theirs), err_msg=what, **TOL)


def silu(v):
    return v / (1 + np.exp(-v))


def sizes(model):
    cfg = model.config
    inner = cfg.expand * cfg.hidden_size
    return inner, cfg.num_heads, cfg.head_dim, cfg.state_size, cfg.n_groups, inner + 2 * cfg.n_groups * cfg.state_size


# ---- the weights are transformers' model ---------------------------------------------------

def test_the_lengths_cross_chunk_boundaries(model):
    chunk = model.config.chunk_size
    assert max(LENGTHS) > 2 * chunk and any(n % chunk for n in LENGTHS if n > chunk)


def test_shipped_weights_load_into_mamba2_for_causal_lm(model):
    from safetensors.torch import load_file

    assert type(model) is transformers.Mamba2ForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.state_size, cfg.conv_kernel, cfg.expand, cfg.head_dim,
            cfg.n_groups) == (2, 64, 16, 4, 2, 16, 1)
    assert cfg.num_heads * cfg.head_dim == cfg.expand * cfg.hidden_size
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.tie_word_embeddings
    # independently of load_mamba2: the file's tensors into a fresh transformers model
    fresh = transformers.Mamba2ForCausalLM(transformers.Mamba2Config(
        vocab_size=96, hidden_size=64, state_size=16, num_hidden_layers=2, expand=2, conv_kernel=4, head_dim=16,
        num_heads=8, n_groups=1, tie_word_embeddings=True))
    missing, unexpected = fresh.load_state_dict(load_file(str(mamba2_model.shipped_weights_path())), strict=False)
    assert missing == ["lm_head.weight"] and unexpected == []  # the tied head is stored once
    fresh.tie_weights()
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr()


def test_state_shapes_are_transformers_names_and_shapes(model):
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert mamba2_model.state_shapes(mamba2_model.our_config(model)) == theirs


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    theirs = sum(p.numel() for p in model.parameters())
    assert theirs <= 300_000
    assert count_params(spec).total == theirs
    assert spec.architecture.tied_embeddings and spec.kind == "ssm" and spec.architecture.mixer == "mamba2"
    ssm = spec.architecture.ssm
    assert (ssm.d_state, ssm.d_conv, ssm.expand, ssm.head_dim, ssm.n_groups) == (
        model.config.state_size, model.config.conv_kernel, model.config.expand, model.config.head_dim,
        model.config.n_groups)
    assert "trained by llmviz (llmviz train mamba2-tiny)" in spec.sources


def test_models_command_lists_it_with_that_count(capsys, model):
    assert main(["models"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["mamba2-tiny"]]
    assert len(rows) == 1, rows
    assert human(sum(p.numel() for p in model.parameters())) in rows[0].split(), rows[0]


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    state["backbone.layers.0.mixer.A_log"] = state["backbone.layers.0.mixer.A_log"][:4].contiguous()
    info = {"model": "mamba2-tiny", "config": {"n_layers": 2}}
    path = tmp_path / "bad.safetensors"
    path.write_bytes(save(state, metadata={"llmviz": json.dumps(info)}))
    with pytest.raises(WeightsError, match="A_log.*shape"):
        mamba2_model.load_mamba2(path)
    with pytest.raises(ValueError, match="head_dim 24 does not divide d_inner 128"):
        mamba2_model.checked_config({"head_dim": 24})


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    tokens = random_tokens(length, seed=length)
    theirs = hf_forward(model, tokens, output_hidden_states=True, use_cache=False)
    trace = mamba2_trace.trace(model, tokens)
    close(trace["logits"], theirs.logits[0], "logits")
    close(trace["probs"], torch.softmax(theirs.logits[0], -1), "probs")
    # transformers' hidden_states: each layer's output, then the final norm's
    hidden = theirs.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1
    for i in range(model.config.num_hidden_layers):
        close(trace[f"blocks.{i}.resid1"], hidden[i][0], f"layer {i} output")
    close(trace["ln_f.out"], hidden[-1][0], "final norm")


def test_mixer_intermediates_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of the projections and the
    gated norm (whose inputs are the scan's output y and the gate z)."""
    tokens = random_tokens(37, seed=7)
    seen = {}

    def keep(name):
        def hook(module, args, output):
            seen[name] = ([a[0].detach().clone() for a in args], output[0].detach().clone())
        return hook

    handles = []
    for i in range(model.config.num_hidden_layers):
        for part in ("norm", "mixer.in_proj", "mixer.norm", "mixer.out_proj"):
            module = model.get_submodule(f"backbone.layers.{i}.{part}")
            handles.append(module.register_forward_hook(keep(f"{i}.{part}")))
    try:
        hf_forward(model, tokens, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    trace = mamba2_trace.trace(model, tokens)
    inner, heads, _, _, _, conv_dim = sizes(model)
    for i in range(model.config.num_hidden_layers):
        p, mixer = f"blocks.{i}", model.backbone.layers[i].mixer
        close(trace[f"{p}.ln1.out"], seen[f"{i}.norm"][1], "norm")
        _, proj = seen[f"{i}.mixer.in_proj"]
        close(trace[f"{p}.mamba.z"], proj[:, :inner], "z")
        close(trace[f"{p}.mamba.xBC"], proj[:, inner:inner + conv_dim], "xBC")
        dt = torch.nn.functional.softplus(proj[:, inner + conv_dim:] + mixer.dt_bias.detach())
        close(trace[f"{p}.mamba.dt"], dt, "dt")
        (y, gate), normed = seen[f"{i}.mixer.norm"]
        close(trace[f"{p}.mamba.y"], y, "scan output y")
        close(trace[f"{p}.mamba.z"], gate, "the gate")
        close(trace[f"{p}.mamba.norm"], normed, "gated RMSNorm")
        (into_out,), out = seen[f"{i}.mixer.out_proj"]
        close(trace[f"{p}.mamba.norm"], into_out, "out_proj input")
        close(trace[f"{p}.mamba.out"], out, "mixer out")


def test_scan_intermediates_follow_the_formulas(model):
    """Recomputed here in float64 numpy from the trace's inputs and the weights (formulas.md)."""
    tokens = random_tokens(21, seed=3)
    tr, w = mamba2_trace.trace(model, tokens), mamba2_trace.weights(model)
    eps, k = model.config.layer_norm_epsilon, model.config.conv_kernel
    inner, H, P, N, G, _ = sizes(model)
    T = len(tokens)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        resid_in = (tr["embed.out"] if i == 0 else tr[f"blocks.{i - 1}.resid1"]).astype(np.float64)
        rms = np.sqrt((resid_in ** 2).mean(-1) + eps)
        close(tr[f"{p}.ln1.rms"], rms, "rms")
        u = resid_in / rms[:, None] * w[f"{p}.ln1.weight"]
        close(tr[f"{p}.ln1.out"], u, "RMSNorm")
        close(tr[f"{p}.mamba.z"], u @ w[f"{p}.mamba.z.weight"].T, "z")
        close(tr[f"{p}.mamba.xBC"], u @ w[f"{p}.mamba.xBC.weight"].T, "xBC")
        dt = np.logaddexp(0, u @ w[f"{p}.mamba.dt.weight"].T + w[f"{p}.mamba.dt_bias"])
        close(tr[f"{p}.mamba.dt"], dt, "softplus dt per head")
        xbc = tr[f"{p}.mamba.xBC"].astype(np.float64)
        kernel = w[f"{p}.mamba.conv.weight"]
        padded = np.concatenate([np.zeros((k - 1, xbc.shape[1])), xbc])
        conv = np.stack([(padded[t:t + k] * kernel.T).sum(0) for t in range(T)]) + w[f"{p}.mamba.conv.bias"]
        close(tr[f"{p}.mamba.conv"], conv, "causal depthwise conv")
        act = silu(conv)
        close(tr[f"{p}.mamba.conv_act"], act, "SiLU")
        x = act[:, :inner].reshape(T, H, P)
        B = np.repeat(act[:, inner:inner + G * N].reshape(T, G, N), H // G, axis=1)   # (T, H, N)
        C = np.repeat(act[:, inner + G * N:].reshape(T, G, N), H // G, axis=1)
        A = -np.exp(w[f"{p}.mamba.A_log"].astype(np.float64))                        # one scalar per head
        dA = np.exp(dt * A)
        close(tr[f"{p}.mamba.dA"], dA, "dA = exp(dt A)")
        h, hs = np.zeros((H, P, N)), []
        for t in range(T):
            h = dA[t][:, None, None] * h + dt[t][:, None, None] * x[t][:, :, None] * B[t][:, None, :]
            hs.append(h)
        hs = np.stack(hs)
        close(tr[f"{p}.mamba.h"], hs, "state h")
        y = np.einsum("thpn,thn->thp", hs, C) + w[f"{p}.mamba.D"][:, None] * x
        close(tr[f"{p}.mamba.y"], y.reshape(T, inner), "y = C h + D x")
        gated = tr[f"{p}.mamba.y"].astype(np.float64) * silu(tr[f"{p}.mamba.z"].astype(np.float64))
        groups = gated.reshape(T, G, inner // G)
        normed = (groups / np.sqrt((groups ** 2).mean(-1, keepdims=True) + eps)).reshape(T, inner)
        close(tr[f"{p}.mamba.norm"], normed * w[f"{p}.mamba.norm.weight"], "gated RMSNorm")
        close(tr[f"{p}.mamba.out"], tr[f"{p}.mamba.norm"] @ w[f"{p}.mamba.out.weight"].T.astype(np.float64), "out")


@pytest.mark.parametrize("chunk_size", (1, 5, 16, 64, 100))
def test_the_recurrence_equals_transformers_chunked_scan(model, chunk_size):
    """Our trace's x, Δ, B and C fed to transformers' chunked SSD function (mamba2_chunk_scan, at
    several chunk sizes): its y and final state are the recurrence's, and the state carried
    from a first segment into a second (initial_states) is ours after the first."""
    tokens = random_tokens(53, seed=17)
    split = 23
    tr, w = mamba2_trace.trace(model, tokens), mamba2_trace.weights(model)
    inner, H, P, N, G, _ = sizes(model)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        act = torch.tensor(tr[f"{p}.mamba.conv_act"])[None]
        x = act[..., :inner].reshape(1, -1, H, P)
        B = act[..., inner:inner + G * N].reshape(1, -1, G, N)
        C = act[..., inner + G * N:].reshape(1, -1, G, N)
        dt_raw = torch.tensor(tr[f"{p}.ln1.out"] @ w[f"{p}.mamba.dt.weight"].T)[None]
        A = -torch.exp(torch.tensor(w[f"{p}.mamba.A_log"]))
        common = dict(chunk_size=chunk_size, D=torch.tensor(w[f"{p}.mamba.D"]),
                      dt_bias=torch.tensor(w[f"{p}.mamba.dt_bias"]), dt_softplus=True, return_final_states=True)
        y, final = modeling_mamba2.mamba2_chunk_scan(x, dt_raw, A, B, C, **common)
        close(tr[f"{p}.mamba.y"], y[0].reshape(-1, inner), f"layer {i} y, chunk {chunk_size}")
        close(tr[f"{p}.mamba.h"][-1], final[0], f"layer {i} final state, chunk {chunk_size}")
        cut = [t[:, :split] for t in (x, dt_raw, B, C)]
        _, mid = modeling_mamba2.mamba2_chunk_scan(*cut[:2], A, *cut[2:], **common)
        close(tr[f"{p}.mamba.h"][split - 1], mid[0], "state after the first segment")
        rest = [t[:, split:] for t in (x, dt_raw, B, C)]
        y2, final2 = modeling_mamba2.mamba2_chunk_scan(*rest[:2], A, *rest[2:], initial_states=mid, **common)
        close(tr[f"{p}.mamba.y"][split:], y2[0].reshape(-1, inner), "second segment's y")
        close(tr[f"{p}.mamba.h"][-1], final2[0], "final state through two segments")


@pytest.mark.parametrize("length", (1, 3, 4, 17, 40))
def test_final_states_equal_transformers_cache(model, length):
    tokens = random_tokens(length, seed=100 + length)
    cache = hf_forward(model, tokens, use_cache=True).cache
    ssm, conv = mamba2_trace.final_state(model, tokens)
    _, H, P, N, _, conv_dim = sizes(model)
    L = model.config.num_hidden_layers
    assert ssm.shape == (L, H, P, N) and conv.shape == (L, conv_dim, model.config.conv_kernel)
    for i in range(L):
        close(ssm[i], cache.get_recurrent_state(i)[0], f"layer {i} ssm state")
        close(conv[i], cache.get_conv_state(i)[0], f"layer {i} conv state")


def test_the_recurrent_form_gives_the_full_forward_logits(model):
    tokens = random_tokens(40, seed=11)
    full = mamba2_trace.trace(model, tokens)["logits"]
    state, stepped = None, []
    for token in tokens:
        logits, state = mamba2_trace.step(model, token, state)
        stepped.append(logits)
    close(np.stack(stepped), full, "token by token")
    # chunks carried by the state, as a long sequence streams
    state, parts = None, []
    for chunk in (tokens[:7], tokens[7:8], tokens[8:25], tokens[25:]):
        with torch.inference_mode():
            logits, state = mamba2_trace.forward(model, torch.tensor([chunk]), state)
        parts.append(logits[0].numpy())
    close(np.concatenate(parts), full, "chunk by chunk")
    ssm, conv = mamba2_trace.final_state(model, tokens)
    close(state.ssm[0], ssm, "streamed ssm state")
    close(state.conv[0], conv, "streamed conv state")


def test_transformers_own_cached_decoding_agrees_with_our_steps(model):
    """transformers' single-token path (mamba2_selective_state_update) after a chunked prefill."""
    tokens = random_tokens(30, seed=5)
    out = hf_forward(model, tokens[:19], use_cache=True)
    theirs = [out.logits[0, -1]]
    for token in tokens[19:]:
        out = hf_forward(model, [token], cache=out.cache, use_cache=True)
        theirs.append(out.logits[0, -1])
    full = mamba2_trace.trace(model, tokens)["logits"]
    close(full[18:], torch.stack(theirs), "transformers' recurrent path")


def test_training_gradients_equal_transformers(model):
    """The loss train_mamba2 minimises, through our forward, has transformers' gradients."""
    from copy import deepcopy

    x = torch.randint(96, (3, 33), generator=torch.Generator().manual_seed(9))
    y = torch.randint(96, (3, 33), generator=torch.Generator().manual_seed(10))
    ours, theirs = deepcopy(model).train(), deepcopy(model).train()
    train_mamba2._loss(ours, x, y).backward()
    logits = theirs(x, use_cache=False).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, 96), y.reshape(-1)).backward()
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-5, rtol=1e-4, err_msg=name)


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    """What the scene draws is fed by the trace as the scene shows it (scenes/ssm_live.py): every recorded
    array under its id, the scan's (T, …) arrays split into one block per token, and nothing left unfed."""
    from llmviz.scenes.ssm_live import scene_arrays_mamba2

    tokens = random_tokens(11, seed=1)
    tr, w = mamba2_trace.trace(model, tokens), mamba2_trace.weights(model)
    layout = layout_model(spec, n_tokens=len(tokens))
    blocks = {bid: (int(r), int(c)) for bid, r, c in zip(layout.ids, layout.rows, layout.cols)}
    shown = scene_arrays_mamba2(tr, 2)
    per_token = {f"blocks.{i}.mamba.{s}" for i in range(2) for s in ('h',)}   # drawn as .0, .1, …
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
    for source in (tr, w):
        for bid in source:
            assert len(source.axes(bid)) == source[bid].ndim
            assert set(source.axes(bid)) <= set(mamba2_trace.MAMBA2_AXES) | {"t", "c", "v"}, bid


def test_weights_are_the_slices_of_transformers_tensors(model):
    w, sd = mamba2_trace.weights(model), model.state_dict()
    m = "backbone.layers.1.mixer"
    inner, H, _, _, _, conv_dim = sizes(model)
    assert np.array_equal(np.concatenate([w["blocks.1.mamba.z.weight"], w["blocks.1.mamba.xBC.weight"],
                                          w["blocks.1.mamba.dt.weight"]]), sd[f"{m}.in_proj.weight"].numpy())
    assert w["blocks.1.mamba.z.weight"].shape == (inner, 64) and w["blocks.1.mamba.xBC.weight"].shape == (conv_dim, 64)
    assert w["blocks.1.mamba.dt.weight"].shape == (H, 64)
    assert np.array_equal(w["blocks.1.mamba.conv.weight"], sd[f"{m}.conv1d.weight"][:, 0].numpy())
    for ours, theirs in (("dt_bias", "dt_bias"), ("A_log", "A_log"), ("D", "D"), ("norm.weight", "norm.weight"),
                         ("out.weight", "out_proj.weight"), ("conv.bias", "conv1d.bias")):
        assert np.array_equal(w[f"blocks.1.mamba.{ours}"], sd[f"{m}.{theirs}"].numpy()), ours
    assert np.array_equal(w["lm_head.weight"], w["embed.tok.weight"])


def test_bad_tokens_fail_in_one_line(model):
    with pytest.raises(ValueError, match=r"tokens: ids must lie in \[0, 96\)"):
        mamba2_trace.trace(model, [3, 96])
    with pytest.raises(ValueError, match="at least one token"):
        mamba2_trace.trace(model, [])


# ---- training ------------------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    runs = [train_mamba2.train(seed=3, steps=3, log=lambda line: None, report=False) for _ in range(2)]
    data = [mamba2_model.safetensors_bytes(r.model, {"seed": 3}) for r in runs]
    assert data[0] == data[1]
    other = train_mamba2.train(seed=4, steps=3, log=lambda line: None, report=False)
    assert mamba2_model.safetensors_bytes(other.model, {"seed": 3}) != data[0]
    assert math.isfinite(runs[0].final_loss)
    assert type(runs[0].model) is transformers.Mamba2ForCausalLM


def test_saved_weights_load_back(tmp_path):
    run = train_mamba2.train(seed=1, steps=2, log=lambda line: None, report=False)
    out = tmp_path / "m.safetensors"
    mamba2_model.save_safetensors(run.model, out, {"seed": 1, "steps": 2})
    loaded = mamba2_model.load_mamba2(out)
    for name, value in run.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name


# ---- the transformers folder ---------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "mamba2-tiny-hf"
    return mamba2_model.export_hf_folder(folder)


def test_export_round_trip_loads_as_mamba2_and_computes_our_logits(exported, model):
    folder = exported.folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded, info = transformers.Mamba2ForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert loaded.lm_head.weight.data_ptr() == loaded.backbone.embeddings.weight.data_ptr()  # tied again
    assert exported.parameters == sum(p.numel() for p in loaded.parameters())
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    auto = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(auto) is transformers.Mamba2ForCausalLM
    for length in (1, 5, 33):
        tokens = random_tokens(length, seed=300 + length)
        with torch.inference_mode():
            theirs = auto(torch.tensor([tokens])).logits[0].numpy()
        close(mamba2_trace.trace(model, tokens)["logits"], theirs, f"exported logits, {length} tokens")


def test_export_config_fields_match_the_spec_and_the_model(exported, spec, model):
    raw = json.loads((exported.folder / "config.json").read_text())
    arch = spec.architecture
    assert raw["model_type"] == "mamba2" and raw["architectures"] == ["Mamba2ForCausalLM"]
    for field, expected in (("num_hidden_layers", arch.n_layers), ("hidden_size", arch.d_model),
                            ("vocab_size", arch.vocab_size), ("state_size", arch.ssm.d_state),
                            ("conv_kernel", arch.ssm.d_conv), ("expand", arch.ssm.expand),
                            ("head_dim", arch.ssm.head_dim), ("n_groups", arch.ssm.n_groups),
                            ("num_heads", arch.ssm.expand * arch.d_model // arch.ssm.head_dim),
                            ("chunk_size", model.config.chunk_size)):
        assert raw[field] == expected, field
    assert raw["tie_word_embeddings"] is True and raw["use_bias"] is False and raw["use_conv_bias"] is True


def test_export_hf_lists_mamba2_tiny_with_this_modules_loader():
    from llmviz.models import export_hf

    entry = export_hf.EXPORTABLE["mamba2-tiny"]
    assert entry.architecture.model_class == "Mamba2ForCausalLM" and entry.loader == mamba2_model.LOADER


def test_export_refuses_a_non_empty_folder(tmp_path):
    from llmviz.models.export_hf import ExportError

    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        mamba2_model.export_hf_folder(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_export_needs_no_transformers(tmp_path):
    # transformers made unimportable: the export reads the checked weights file and writes JSON
    code = ("import sys; sys.modules['transformers'] = None; from llmviz.models.sim import mamba2_model; "
            f"mamba2_model.export_hf_folder({str(tmp_path / 'out')!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
