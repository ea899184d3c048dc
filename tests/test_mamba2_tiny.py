"""mamba2-tiny: the shipped weights are a transformers Mamba2ForCausalLM, and llmviz's traced forward
(models/sim/mamba2_trace.py), a token-by-token recurrence, computes what transformers' chunked SSD
scan computes — logits, hidden states, the mixer's intermediates, the final conv and SSM states,
the recurrent form, the gradients — with the scan's intermediates checked against formulas
recomputed here in numpy. Training is deterministic from a seed; the spec counts exactly
transformers' parameters; the transformers folder loads back with from_pretrained."""
import numpy as np
import pytest
from tiny_model_support import (
    assert_a_saved_training_loads_back, assert_bad_tokens_fail_in_one_line, assert_config_fields,
    assert_damaged_file_is_refused, assert_every_array_names_its_axes, assert_export_refuses_a_non_empty_folder,
    assert_exported_logits_are_ours, assert_ids_are_the_blocks, assert_logits_and_hidden_states_equal,
    assert_mamba_final_states_equal_cache, assert_models_command_lists, assert_shipped_file_loads_into,
    assert_spec_counts_every_parameter, assert_state_shapes_are_transformers,
    assert_the_export_loads_with_from_pretrained, assert_the_export_needs_no_transformers,
    assert_the_mamba_recurrent_form_gives_the_full_logits, assert_training_is_deterministic,
    assert_transformers_own_decoding_agrees, causal_conv, close, exported_config, hf_forward, layout_blocks,
    model_fixture, random_tokens, recording, rms, silu, spec_fixture, torch, transformers)
from transformers.models.mamba2 import modeling_mamba2

from llmviz.models.sim import mamba2_model, mamba2_trace, moe_corpus, train_mamba2

# Shorter than and equal to the conv width, inside one chunk, exactly one and several chunks, and
# lengths that leave a part-filled last chunk (transformers pads it).
LENGTHS = (1, 3, 4, 15, 16, 17, 40, 64)


model = model_fixture(mamba2_model.load_mamba2)
spec = spec_fixture("mamba2-tiny")


def sizes(model):
    cfg = model.config
    inner = cfg.expand * cfg.hidden_size
    return inner, cfg.num_heads, cfg.head_dim, cfg.state_size, cfg.n_groups, inner + 2 * cfg.n_groups * cfg.state_size


# ---- the weights are transformers' model ---------------------------------------------------

def test_the_lengths_cross_chunk_boundaries(model):
    chunk = model.config.chunk_size
    assert max(LENGTHS) > 2 * chunk and any(n % chunk for n in LENGTHS if n > chunk)


def test_shipped_weights_load_into_mamba2_for_causal_lm(model):
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
    assert_shipped_file_loads_into(fresh, model, mamba2_model.shipped_weights_path(), tied_head="lm_head.weight")
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr()


def test_state_shapes_are_transformers_names_and_shapes(model):
    assert_state_shapes_are_transformers(mamba2_model, model, leave_out={"lm_head.weight"})


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    assert_spec_counts_every_parameter(spec, model, at_most=300_000)
    assert spec.architecture.tied_embeddings and spec.kind == "ssm" and spec.architecture.mixer == "mamba2"
    ssm = spec.architecture.ssm
    assert (ssm.d_state, ssm.d_conv, ssm.expand, ssm.head_dim, ssm.n_groups) == (
        model.config.state_size, model.config.conv_kernel, model.config.expand, model.config.head_dim,
        model.config.n_groups)
    assert "trained by llmviz (llmviz train mamba2-tiny)" in spec.sources


def test_models_command_lists_it_with_that_count(capsys, model):
    assert_models_command_lists(capsys, "mamba2-tiny", model)


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert_damaged_file_is_refused(tmp_path, mamba2_model.load_mamba2, state, "backbone.layers.0.mixer.A_log",
                                   np.s_[:4], "mamba2-tiny", n_layers=2)
    with pytest.raises(ValueError, match="head_dim 24 does not divide d_inner 128"):
        mamba2_model.checked_config({"head_dim": 24})


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    # transformers' hidden_states: each layer's output, then the final norm's
    assert_logits_and_hidden_states_equal(model, mamba2_trace, length, resid="resid1")


def test_mixer_intermediates_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of the projections and the
    gated norm (whose inputs are the scan's output y and the gate z)."""
    tokens = random_tokens(37, seed=7)
    parts = ("norm", "mixer.in_proj", "mixer.norm", "mixer.out_proj")
    modules = {f"{i}.{part}": f"backbone.layers.{i}.{part}"
               for i in range(model.config.num_hidden_layers) for part in parts}
    every_input = lambda args, output: ([a[0].detach().clone() for a in args], output[0].detach().clone())  # noqa: E731
    with recording(model, modules, every_input) as seen:
        hf_forward(model, tokens, use_cache=False)
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
        close(tr[f"{p}.ln1.rms"], rms(resid_in, eps), "rms")
        u = resid_in / rms(resid_in, eps)[:, None] * w[f"{p}.ln1.weight"]
        close(tr[f"{p}.ln1.out"], u, "RMSNorm")
        close(tr[f"{p}.mamba.z"], u @ w[f"{p}.mamba.z.weight"].T, "z")
        close(tr[f"{p}.mamba.xBC"], u @ w[f"{p}.mamba.xBC.weight"].T, "xBC")
        dt = np.logaddexp(0, u @ w[f"{p}.mamba.dt.weight"].T + w[f"{p}.mamba.dt_bias"])
        close(tr[f"{p}.mamba.dt"], dt, "softplus dt per head")
        assert w[f"{p}.mamba.conv.weight"].shape[1] == k
        conv = causal_conv(tr[f"{p}.mamba.xBC"], w[f"{p}.mamba.conv.weight"], w[f"{p}.mamba.conv.bias"])
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
    _, H, P, N, _, conv_dim = sizes(model)
    assert_mamba_final_states_equal_cache(model, mamba2_trace, length, ssm_shape=(H, P, N),
                                          conv_shape=(conv_dim, model.config.conv_kernel))


def test_the_recurrent_form_gives_the_full_forward_logits(model):
    # token by token, then chunks carried by the state, as a long sequence streams
    assert_the_mamba_recurrent_form_gives_the_full_logits(model, mamba2_trace)


def test_transformers_own_cached_decoding_agrees_with_our_steps(model):
    """transformers' single-token path (mamba2_selective_state_update) after a chunked prefill."""
    assert_transformers_own_decoding_agrees(model, mamba2_trace, random_tokens(30, seed=5), prefix=19)


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


def test_the_ssd_matrices_are_the_scan_in_its_dual_form(model, spec):
    """The scene's per-head SSD matrices: each entry is its definition C_t·B_s · a_(s+1)…a_t · Δ_s (a product
    taken here term by term), M·x + D·x is the trace's y, and so is the chunked sum the caption describes —
    inside each chunk of the spec's chunk_size, M's diagonal block times x, plus what the state at the chunk's
    start (the scan table's h) carries in."""
    from llmviz.scenes.ssm_live import scene_arrays_mamba2

    assert spec.architecture.ssm.chunk_size == model.config.chunk_size
    chunk = spec.architecture.ssm.chunk_size
    tokens = random_tokens(2 * chunk + 5, seed=23)                  # three chunks, the last one short
    shown = scene_arrays_mamba2(mamba2_trace.trace(model, tokens), 2)
    w = mamba2_trace.weights(model)
    inner, H, P, N, G, _ = sizes(model)
    T = len(tokens)
    for i in range(2):
        p = f"blocks.{i}.mamba"
        act = shown[f"{p}.conv_act"].astype(np.float64)
        x = act[:, :inner].reshape(T, H, P)
        B, C = (act[:, inner + k * G * N:inner + (k + 1) * G * N].reshape(T, G, N) for k in (0, 1))
        dt, a = shown[f"{p}.dt"].astype(np.float64), shown[f"{p}.dA"].astype(np.float64)
        M = np.stack([shown[f"{p}.ssd.{h}"] for h in range(H)]).astype(np.float64)
        for h, t, s in ((0, 9, 2), (H - 1, T - 1, 0), (3, 20, 20), (5, 4, 11)):
            g = h // (H // G)
            expected = (C[t, g] @ B[s, g]) * np.prod(a[s + 1:t + 1, h]) * dt[s, h] if s <= t else 0.0
            assert abs(M[h, t, s] - expected) <= 1e-5 * max(1.0, abs(expected)), (h, t, s)
        D = w[f"{p}.D"].astype(np.float64)[None, :, None]
        y = shown[f"{p}.y"].reshape(T, H, P)
        close(y, np.einsum("hts,shp->thp", M, x) + D * x, f"layer {i}: M·x + D·x")
        chunked = np.empty_like(x)
        for start in range(0, T, chunk):
            part = slice(start, min(T, start + chunk))
            inside = np.einsum("hts,shp->thp", M[:, part, part], x[part])
            before = shown[f"{p}.h.{start - 1}"] if start else shown[f"{p}.h_init"]   # (inner, N)
            decay = np.cumprod(a[part], axis=0)                                       # a_start … a_t
            C_heads = np.repeat(C[part], H // G, axis=1)                              # (len, H, N)
            carried = np.einsum("thn,hpn->thp", C_heads, before.reshape(H, P, N)) * decay[:, :, None]
            chunked[part] = inside + carried + D * x[part]
        close(y, chunked, f"layer {i}: chunk by chunk")


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    """What the scene draws is fed by the trace as the scene shows it (scenes/ssm_live.py): every recorded
    array under its id, the scan's (T, …) arrays split into one block per token, and nothing left unfed."""
    from llmviz.scenes.ssm_live import scene_arrays_mamba2

    tokens = random_tokens(11, seed=1)
    tr, w = mamba2_trace.trace(model, tokens), mamba2_trace.weights(model)
    blocks = layout_blocks(spec, len(tokens))
    shown = scene_arrays_mamba2(tr, 2)
    per_token = {f"blocks.{i}.mamba.{s}" for i in range(2) for s in ('h',)}   # drawn as .0, .1, …
    assert per_token <= set(tr) and not per_token & set(blocks)
    assert {f"blocks.0.mamba.h.{t}" for t in range(len(tokens))} <= set(blocks)
    hover_only = {bid for bid in shown if bid.endswith(".conv_init")}   # the conv inputs carried in, not drawn
    assert_ids_are_the_blocks((set(shown) - per_token - hover_only) | set(w), blocks, shown, w)
    for source in (tr, w):
        assert_every_array_names_its_axes(source)
        for bid in source:
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
    assert_bad_tokens_fail_in_one_line(mamba2_trace, model)


# ---- training ------------------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    runs = assert_training_is_deterministic(train_mamba2, mamba2_model)
    assert type(runs[0].model) is transformers.Mamba2ForCausalLM


def test_saved_weights_load_back(tmp_path):
    run = train_mamba2.train(seed=1, steps=2, log=lambda line: None, report=False)
    assert_a_saved_training_loads_back(run, mamba2_model, mamba2_model.load_mamba2, tmp_path / "m.safetensors")


# ---- the transformers folder ---------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "mamba2-tiny-hf"
    return mamba2_model.export_hf_folder(folder)


def test_export_round_trip_loads_as_mamba2_and_computes_our_logits(exported, model):
    loaded, auto = assert_the_export_loads_with_from_pretrained(exported.folder, model, transformers.Mamba2ForCausalLM)
    assert loaded.lm_head.weight.data_ptr() == loaded.backbone.embeddings.weight.data_ptr()  # tied again
    assert exported.parameters == sum(p.numel() for p in loaded.parameters())
    assert_exported_logits_are_ours(model, mamba2_trace, auto, lengths=(1, 5, 33), seed=300)


def test_export_config_fields_match_the_spec_and_the_model(exported, spec, model):
    raw = exported_config(exported.folder, "mamba2", "Mamba2ForCausalLM")
    arch = spec.architecture
    assert_config_fields(raw, (("num_hidden_layers", arch.n_layers), ("hidden_size", arch.d_model),
                               ("vocab_size", arch.vocab_size), ("state_size", arch.ssm.d_state),
                               ("conv_kernel", arch.ssm.d_conv), ("expand", arch.ssm.expand),
                               ("head_dim", arch.ssm.head_dim), ("n_groups", arch.ssm.n_groups),
                               ("num_heads", arch.ssm.expand * arch.d_model // arch.ssm.head_dim),
                               ("chunk_size", model.config.chunk_size), ("chunk_size", arch.ssm.chunk_size)))
    assert raw["tie_word_embeddings"] is True and raw["use_bias"] is False and raw["use_conv_bias"] is True


def test_export_hf_lists_mamba2_tiny_with_this_modules_loader():
    from llmviz.models import export_hf

    entry = export_hf.EXPORTABLE["mamba2-tiny"]
    assert entry.architecture.model_class == "Mamba2ForCausalLM" and entry.loader == mamba2_model.LOADER


def test_export_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    assert_export_refuses_a_non_empty_folder(mamba2_model.export_hf_folder, tmp_path)


def test_export_needs_no_transformers(tmp_path):
    # transformers made unimportable: the export reads the checked weights file and writes JSON
    assert_the_export_needs_no_transformers("mamba2_model", tmp_path / "out")
