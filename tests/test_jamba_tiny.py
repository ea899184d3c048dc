"""jamba-tiny: the shipped weights are a transformers JambaForCausalLM, and llmviz's traced forward
(models/sim/jamba_trace.py) computes what transformers computes — logits, hidden states, router
logits, the load-balancing loss, the modules' outputs, the cache (keys and values that grow, a Mamba
state that does not) — with attention, the scan with Jamba's inner norms and the MoE recomputed here
in numpy from the formulas. Every id is the layout's; training is deterministic from a seed; the
spec counts exactly transformers' parameters; the exported folder loads with from_pretrained."""
import math

import numpy as np
import pytest
from tiny_model_support import (
    assert_a_saved_training_loads_back, assert_bad_tokens_fail_in_one_line,
    assert_blocks_are_fed_with_their_shapes, assert_config_fields, assert_damaged_file_is_refused,
    assert_every_array_names_its_axes, assert_export_refuses_a_non_empty_folder, assert_exported_logits_are_ours,
    assert_implicit_attention_reproduces_y, assert_logits_and_probs_equal, assert_mamba_projections,
    assert_mamba_weights_are_the_slices, assert_shipped_file_loads_into, assert_spec_counts_every_parameter,
    assert_state_shapes_are_transformers, assert_steps_and_chunks_give_the_full_logits,
    assert_the_export_loads_with_from_pretrained, assert_the_export_needs_no_transformers,
    assert_training_is_deterministic, assert_transformers_own_decoding_agrees, causal_conv, close, exported_config,
    hf_forward, layout_blocks, model_fixture, random_tokens, recording, rms, selective_scan, silu, spec_fixture,
    torch, transformers)

from llmviz.models import inventory
from llmviz.models.sim import jamba_model, jamba_trace, moe_corpus, train_jamba

LENGTHS = (1, 3, 4, 17, 64)          # shorter than, equal to and longer than the conv width
# What the trace records that the layout draws no block for, by layer kind (the id after "blocks.{i}.").
MAMBA_UNDRAWN = {"mamba.dA", "mamba.dB", "mamba.h", "mamba.alpha",            # the scan, drawn per token
                 "mamba.dt_low_norm", "mamba.B_norm", "mamba.C_norm"}       # Jamba's inner norms' outputs
MOE_UNDRAWN = {"moe.probs", "moe.topk"}                                     # + moe.expert.{e}.out
WEIGHT_UNDRAWN = {"mamba.inner_norms"}                                      # + moe.expert.{e}.up/down.weight


model = model_fixture(jamba_model.load_jamba)
spec = spec_fixture("jamba-tiny")


def layer_plan(model):
    """(mixer, is MoE) per layer, read from transformers' own config properties."""
    cfg = model.config
    return [(kind, n > 1) for kind, n in zip(cfg.layers_block_type, cfg.layers_num_experts)]


def rms_norm(x, weight, eps):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * weight


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_load_into_jamba_for_causal_lm(model):
    assert type(model) is transformers.JambaForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (4, 64, 4, 2)
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.intermediate_size) == (4, 2, 128)
    assert (cfg.mamba_d_state, cfg.mamba_d_conv, cfg.mamba_expand, cfg.mamba_dt_rank) == (16, 4, 2, math.ceil(64 / 16))
    assert cfg.layers_block_type == ["mamba", "mamba", "attention", "mamba"]
    assert [n > 1 for n in cfg.layers_num_experts] == [False, True, False, True]
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.tie_word_embeddings is False
    # independently of load_jamba: the file's tensors into a fresh transformers model from a hand-written config
    fresh = transformers.JambaForCausalLM(transformers.JambaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, expert_layer_period=2, expert_layer_offset=1,
        attn_layer_period=4, attn_layer_offset=2, mamba_d_state=16, mamba_d_conv=4, mamba_expand=2,
        mamba_dt_rank=4, tie_word_embeddings=False, pad_token_id=None))
    assert_shipped_file_loads_into(fresh, model, jamba_model.shipped_weights_path())   # nothing missing or unexpected
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()   # untied, as Jamba
    assert model.model.embed_tokens.padding_idx is None   # no frozen row: id 0 is the newline


def test_state_shapes_are_transformers_names_and_shapes(model):
    assert_state_shapes_are_transformers(jamba_model, model)


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    assert_spec_counts_every_parameter(spec, model, at_most=400_000)
    assert spec.kind == "hybrid" and not spec.architecture.tied_embeddings
    assert spec.architecture.layer_mixers() == model.config.layers_block_type
    assert [spec.architecture.is_moe_layer(i) for i in range(4)] == [moe for _, moe in layer_plan(model)]
    assert spec.architecture.moe.aux_loss_coef == model.config.router_aux_loss_coef == jamba_model.AUX_LOSS_COEF


def test_the_inventory_is_transformers_tensors_one_by_one(model, spec):
    """Every counted tensor of our inventory is one of the weights (the same number of values), and
    the weights hold every transformers parameter exactly once."""
    w = jamba_trace.weights(model)
    counted = [t for t in inventory.model_tensors(spec) if t.counted]
    for t in counted:
        if t.kind == inventory.EXPERT:   # one block for the expert's whole SwiGLU
            parts = [f"{t.id}", f"{t.id}.up.weight", f"{t.id}.down.weight"]
            assert sum(w[p].size for p in parts) == t.count, t.id
        else:
            assert w[t.id].size == t.count, t.id
    assert sum(w[k].size for k in w) == sum(p.numel() for p in model.parameters())
    assert {t.id for t in inventory.folded(spec)} == {f"blocks.{i}.mamba.inner_norms" for i in (0, 1, 3)}


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    assert_damaged_file_is_refused(tmp_path, jamba_model.load_jamba, jamba_model.state_tensors(model),
                                   "model.layers.1.feed_forward.experts.gate_up_proj", np.s_[:, :128], "jamba-tiny",
                                   n_layers=4)


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    tokens = random_tokens(length, seed=length)
    L = model.config.num_hidden_layers
    with recording(model, {"out": f"model.layers.{L - 1}"}, lambda args, output: output[0].clone()) as last:
        theirs = hf_forward(model, tokens, output_hidden_states=True, use_cache=False)
    tr = jamba_trace.trace(model, tokens)
    assert_logits_and_probs_equal(tr, theirs)
    # transformers' hidden_states: the embedding, the output of every layer but the last, then the final norm's
    hidden = theirs.hidden_states
    assert len(hidden) == L + 1
    close(tr["embed.out"], hidden[0][0], "embedding")
    for i in range(L - 1):
        close(tr[f"blocks.{i}.resid2"], hidden[i + 1][0], f"layer {i} output")
    close(tr[f"blocks.{L - 1}.resid2"], last["out"], "last layer output")
    close(tr["ln_f.out"], hidden[-1][0], "final norm")


def test_a_batch_through_forward_equals_transformers(model):
    """The training path: several rows at once, as train_jamba calls it."""
    idx = torch.stack([torch.tensor(random_tokens(21, seed=s)) for s in (31, 32, 33)])
    with torch.inference_mode():
        ours, _, router = jamba_trace.forward(model, idx)
        theirs = model(idx, output_router_logits=True, use_cache=False)
    close(ours, theirs.logits, "batched logits")
    for a, b in zip(router, theirs.router_logits):
        close(a, b, "batched router logits")


@pytest.mark.parametrize("length", (1, 9, 40))
def test_router_logits_and_load_balancing_loss_equal_transformers(model, length):
    tokens = random_tokens(length, seed=50 + length)
    moe_layers = [i for i, (_, moe) in enumerate(layer_plan(model)) if moe]
    routers = {i: f"model.layers.{i}.feed_forward.router" for i in moe_layers}
    every_output = lambda args, output: [t.detach().clone() for t in output]  # noqa: E731  logits, top-k weights, index
    with recording(model, routers, every_output) as picked:
        theirs = hf_forward(model, tokens, output_router_logits=True, use_cache=False)
    tr = jamba_trace.trace(model, tokens)
    assert len(theirs.router_logits) == len(moe_layers)
    for i, logits in zip(moe_layers, theirs.router_logits):
        close(tr[f"blocks.{i}.moe.router"], logits, f"layer {i} router logits")
        _, weights, index = picked[i]
        assert np.array_equal(tr[f"blocks.{i}.moe.topk"], index.numpy()), f"layer {i} chosen experts"
        dense = np.zeros((length, model.config.num_experts))
        np.put_along_axis(dense, index.numpy(), weights.numpy(), axis=1)
        close(tr[f"blocks.{i}.moe.gates"], dense, f"layer {i} gates")
    with torch.inference_mode():
        _, _, router = jamba_trace.forward(model, torch.tensor([tokens]))
        ours = jamba_trace.routing.mixtral_load_balancing_loss(router, model.config.num_experts_per_tok)
    close(ours, theirs.aux_loss, "load-balancing loss")


def test_training_loss_equals_transformers_loss_with_its_aux_term(model):
    """train_jamba's objective is what transformers computes from labels with output_router_logits."""
    tokens = random_tokens(33, seed=77)
    # transformers shifts the labels itself and ignores the last position (-100); ours come shifted
    x, y = torch.tensor([tokens]), torch.tensor([tokens[1:] + [-100]])
    with torch.inference_mode():
        ce, aux, _ = train_jamba._losses(model, x, y)
        theirs = model(x, labels=x, output_router_logits=True, use_cache=False)
    close(aux, theirs.aux_loss, "load-balancing loss")
    close(ce + train_jamba.AUX_LOSS_COEF * aux, theirs.loss, "loss")


def test_module_outputs_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of each projection and norm."""
    tokens = random_tokens(23, seed=7)

    def first_rows(args, output):
        out = output[0] if isinstance(output, tuple) else output
        first = lambda t: (t[0] if t.dim() == 3 else t).detach().clone()  # noqa: E731  batch row 0
        return first(args[0]) if args else None, first(out)

    parts = {"attention": ("input_layernorm", "pre_ff_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                           "self_attn.v_proj", "self_attn.o_proj"),
             "mamba": ("input_layernorm", "pre_ff_layernorm", "mamba.in_proj", "mamba.x_proj", "mamba.dt_layernorm",
                       "mamba.b_layernorm", "mamba.c_layernorm", "mamba.out_proj", "mamba")}
    modules = {f"{i}.{part}": f"model.layers.{i}.{part}" for i, (kind, moe) in enumerate(layer_plan(model))
               for part in parts[kind] + (("feed_forward.experts",) if moe else ("feed_forward",))}
    with recording(model, modules, first_rows) as seen:
        hf_forward(model, tokens, use_cache=False)
    tr = jamba_trace.trace(model, tokens)
    cfg = model.config
    inner, r, n = cfg.mamba_expand * cfg.hidden_size, cfg.mamba_dt_rank, cfg.mamba_d_state
    hd = cfg.hidden_size // cfg.num_attention_heads
    for i, (kind, moe) in enumerate(layer_plan(model)):
        p = f"blocks.{i}"
        close(tr[f"{p}.ln1.out"], seen[f"{i}.input_layernorm"][1], "input_layernorm")
        close(tr[f"{p}.ln2.out"], seen[f"{i}.pre_ff_layernorm"][1], "pre_ff_layernorm")
        if kind == "attention":
            q = seen[f"{i}.self_attn.q_proj"][1]
            for h in range(cfg.num_attention_heads):
                close(tr[f"{p}.attn.head.{h}.q"], q[:, h * hd:(h + 1) * hd], f"head {h} q")
            for g in range(cfg.num_key_value_heads):
                close(tr[f"{p}.attn.kv_head.{g}.k"], seen[f"{i}.self_attn.k_proj"][1][:, g * hd:(g + 1) * hd], "k")
                close(tr[f"{p}.attn.kv_head.{g}.v"], seen[f"{i}.self_attn.v_proj"][1][:, g * hd:(g + 1) * hd], "v")
            heads, out = seen[f"{i}.self_attn.o_proj"]
            close(np.concatenate([tr[f"{p}.attn.head.{h}.out"] for h in range(4)], axis=1), heads, "heads' outputs")
            close(tr[f"{p}.attn.proj"], out, "o_proj")
        else:
            assert_mamba_projections(tr, p, seen[f"{i}.mamba.in_proj"], seen[f"{i}.mamba.x_proj"],
                                     seen[f"{i}.mamba.out_proj"], inner, r, n)
            close(tr[f"{p}.mamba.dt_low_norm"], seen[f"{i}.mamba.dt_layernorm"][1], "dt norm")
            close(tr[f"{p}.mamba.B_norm"], seen[f"{i}.mamba.b_layernorm"][1], "B norm")
            close(tr[f"{p}.mamba.C_norm"], seen[f"{i}.mamba.c_layernorm"][1], "C norm")
            close(tr[f"{p}.mamba.out"], seen[f"{i}.mamba"][1], "mixer")
        if moe:
            close(tr[f"{p}.moe.out"], seen[f"{i}.feed_forward.experts"][1], "experts' sum")
        else:
            close(tr[f"{p}.mlp.down"], seen[f"{i}.feed_forward"][1], "MLP")


def test_attention_follows_the_formula(model):
    """softmax(q·kᵀ/√d + causal mask)·v per query head, head h reading KV group h // (4 / 2)."""
    tokens = random_tokens(13, seed=9)
    tr, w = jamba_trace.trace(model, tokens), jamba_trace.weights(model)
    p, T = "blocks.2", len(tokens)
    x = tr[f"{p}.ln1.out"].astype(np.float64)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    outs = []
    for h in range(4):
        g = h // 2
        q = x @ w[f"{p}.attn.head.{h}.wq"].T
        k, v = x @ w[f"{p}.attn.kv_head.{g}.wk"].T, x @ w[f"{p}.attn.kv_head.{g}.wv"].T
        close(tr[f"{p}.attn.head.{h}.q"], q, "q")
        close(tr[f"{p}.attn.kv_head.{g}.k"], k, "k")
        scores = q @ k.T / math.sqrt(q.shape[1])
        close(tr[f"{p}.attn.head.{h}.scores"], scores, "scores")
        masked = np.where(future, -np.inf, scores)
        assert np.array_equal(np.isinf(tr[f"{p}.attn.head.{h}.scores_masked"]), future)
        e = np.exp(masked - masked.max(-1, keepdims=True))
        att = e / e.sum(-1, keepdims=True)
        close(tr[f"{p}.attn.head.{h}.softmax"], att, "softmax")
        close(tr[f"{p}.attn.head.{h}.out"], att @ v, "head out")
        outs.append(att @ v)
    close(tr[f"{p}.attn.proj"], np.concatenate(outs, 1) @ w[f"{p}.attn.proj.weight"].T, "proj")
    close(tr[f"{p}.resid1"], tr["blocks.1.resid2"] + tr[f"{p}.attn.proj"], "residual")


def test_scan_with_inner_norms_follows_the_formulas(model):
    """Recomputed in float64 numpy from the trace's inputs and the weights (formulas.md, plus Jamba's
    RMSNorms on Δ-low, B and C between x_proj and dt_proj)."""
    tokens = random_tokens(19, seed=3)
    tr, w = jamba_trace.trace(model, tokens), jamba_trace.weights(model)
    eps, r, n = model.config.rms_norm_eps, model.config.mamba_dt_rank, model.config.mamba_d_state
    for i, (kind, _) in enumerate(layer_plan(model)):
        if kind != "mamba":
            continue
        p = f"blocks.{i}"
        resid_in = tr["embed.out"] if i == 0 else tr[f"blocks.{i - 1}.resid2"]
        close(tr[f"{p}.ln1.rms"], rms(resid_in, eps), "rms")
        close(tr[f"{p}.ln1.out"], rms_norm(resid_in, w[f"{p}.ln1.weight"], eps), "ln1")
        assert w[f"{p}.mamba.conv.weight"].shape[1] == model.config.mamba_d_conv
        conv = causal_conv(tr[f"{p}.mamba.x"], w[f"{p}.mamba.conv.weight"], w[f"{p}.mamba.conv.bias"])
        close(tr[f"{p}.mamba.conv"], conv, "causal depthwise conv")
        u = silu(conv)
        close(tr[f"{p}.mamba.conv_act"], u, "SiLU")
        close(tr[f"{p}.mamba.B"], u @ w[f"{p}.mamba.B.weight"].T, "B = W_B x")
        gamma = w[f"{p}.mamba.inner_norms"]
        dt_n = rms_norm(tr[f"{p}.mamba.dt_low"], gamma[:r], eps)
        B_n = rms_norm(tr[f"{p}.mamba.B"], gamma[r:r + n], eps)
        C_n = rms_norm(tr[f"{p}.mamba.C"], gamma[r + n:], eps)
        close(tr[f"{p}.mamba.dt_low_norm"], dt_n, "Δ-low norm")
        close(tr[f"{p}.mamba.B_norm"], B_n, "B norm")
        close(tr[f"{p}.mamba.C_norm"], C_n, "C norm")
        dt = np.logaddexp(0, dt_n @ w[f"{p}.mamba.dt.weight"].T.astype(np.float64) + w[f"{p}.mamba.dt.bias"])
        close(tr[f"{p}.mamba.dt"], dt, "softplus dt")
        A = -np.exp(w[f"{p}.mamba.A_log"].astype(np.float64))
        dA, dB = np.exp(dt[:, :, None] * A), dt[:, :, None] * B_n[:, None, :]
        close(tr[f"{p}.mamba.dA"], dA, "dA")
        close(tr[f"{p}.mamba.dB"], dB, "dB")
        hs = selective_scan(dA, dB, u)
        close(tr[f"{p}.mamba.h"], hs, "state h")
        y = np.einsum("tin,tn->ti", hs, C_n) + w[f"{p}.mamba.D"] * u
        close(tr[f"{p}.mamba.y"], y, "y")
        z = tr[f"{p}.mamba.z"].astype(np.float64)
        close(tr[f"{p}.mamba.gated"], y * silu(z), "gated")
        # the implicit attention reproduces y from the normed C (Ali, Zimerman & Wolf 2024)
        assert_implicit_attention_reproduces_y(tr[f"{p}.mamba.alpha"], u, w[f"{p}.mamba.D"], tr[f"{p}.mamba.y"])


def test_feed_forward_follows_the_formulas(model):
    """MoE: p = softmax(router logits), the top-2 by p, gates p unrenormalised (JambaTopKRouter),
    y = Σ gate · W_down(SiLU(W_gate x) ⊙ W_up x); the dense layers' SwiGLU likewise."""
    tokens = random_tokens(15, seed=21)
    tr, w = jamba_trace.trace(model, tokens), jamba_trace.weights(model)
    for i, (_, moe) in enumerate(layer_plan(model)):
        p = f"blocks.{i}"
        x = tr[f"{p}.ln2.out"].astype(np.float64)

        def swiglu(gate, up, down):
            return (silu(x @ gate.T) * (x @ up.T)) @ down.T

        if moe:
            logits = x @ w[f"{p}.moe.router.weight"].T
            close(tr[f"{p}.moe.router"], logits, "router logits")
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            close(tr[f"{p}.moe.probs"], probs, "router probabilities")
            top = np.argsort(-probs, axis=1, kind="stable")[:, :2]
            assert np.array_equal(np.sort(tr[f"{p}.moe.topk"], 1), np.sort(top, 1))
            gates = np.zeros_like(probs)
            np.put_along_axis(gates, top, np.take_along_axis(probs, top, 1), axis=1)
            close(tr[f"{p}.moe.gates"], gates, "gates (not renormalised)")
            assert (gates.sum(1) < 1).all()
            out = 0
            for e in range(4):
                y = gates[:, e:e + 1] * swiglu(w[f"{p}.moe.expert.{e}"], w[f"{p}.moe.expert.{e}.up.weight"],
                                               w[f"{p}.moe.expert.{e}.down.weight"])
                close(tr[f"{p}.moe.expert.{e}.out"], y, f"expert {e}")
                out = out + y
            close(tr[f"{p}.moe.out"], out, "MoE out")
        else:
            gate = x @ w[f"{p}.mlp.gate.weight"].T
            close(tr[f"{p}.mlp.act"], silu(gate), "SiLU(gate)")
            close(tr[f"{p}.mlp.down"], swiglu(w[f"{p}.mlp.gate.weight"], w[f"{p}.mlp.up.weight"],
                                              w[f"{p}.mlp.down.weight"]), "MLP")
        close(tr[f"{p}.resid2"], tr[f"{p}.resid1"] + (tr[f"{p}.moe.out"] if moe else tr[f"{p}.mlp.down"]), "residual")


# ---- the cache: keys and values grow, the state stays -------------------------------------

@pytest.mark.parametrize("length", (1, 3, 4, 30))
def test_final_cache_equals_transformers_cache_and_its_sizes(model, length):
    tokens = random_tokens(length, seed=100 + length)
    cache = hf_forward(model, tokens, use_cache=True).cache
    state = jamba_trace.final_state(model, tokens)
    assert state.n_tokens == length
    kv = ssm = 0
    for i, (kind, _) in enumerate(layer_plan(model)):
        layer = cache.layers[i]
        if kind == "attention":
            close(state.keys[i], layer.keys, f"layer {i} keys")
            close(state.values[i], layer.values, f"layer {i} values")
            kv += layer.keys.numel() + layer.values.numel()
        else:
            close(state.ssm[i], cache.get_recurrent_state(i), f"layer {i} ssm state")
            close(state.conv[i], cache.get_conv_state(i), f"layer {i} conv state")
            ssm += cache.get_recurrent_state(i).numel() + cache.get_conv_state(i).numel()
    sizes = jamba_trace.cache_sizes(model, length)
    assert (sizes["kv_values"], sizes["state_values"]) == (kv, ssm)
    assert sizes["kv_bytes"] == 4 * kv and sizes["state_bytes"] == 4 * ssm
    assert jamba_trace.cache_sizes(jamba_model.our_config(model), length) == sizes


def test_the_kv_cache_grows_and_the_mamba_state_stays():
    cfg = jamba_model.JambaTinyConfig()
    sizes = [jamba_trace.cache_sizes(cfg, t) for t in (0, 1, 10, 1000)]
    assert len({s["state_values"] for s in sizes}) == 1
    per_token = 2 * 1 * cfg.n_kv_heads * cfg.head_dim      # one attention layer
    assert [s["kv_values"] for s in sizes] == [0, per_token, 10 * per_token, 1000 * per_token]
    assert sizes[0]["state_values"] == 3 * cfg.d_inner * (cfg.d_state + cfg.d_conv)   # three Mamba layers


def test_chunks_and_steps_carried_by_the_cache_give_the_full_forward(model):
    tokens = random_tokens(40, seed=11)
    state = assert_steps_and_chunks_give_the_full_logits(model, jamba_trace, tokens, n_steps=12)
    assert state.n_tokens == len(tokens)


def test_transformers_own_cached_decoding_agrees_with_our_forward(model):
    assert_transformers_own_decoding_agrees(model, jamba_trace, random_tokens(12, seed=5), prefix=5,
                                            what="transformers' cached path")


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    tokens = random_tokens(11, seed=1)
    tr, w = jamba_trace.trace(model, tokens), jamba_trace.weights(model)
    plan = layer_plan(model)
    blocks = layout_blocks(spec, len(tokens))
    undrawn = set()
    for i, (kind, moe) in enumerate(plan):
        p = f"blocks.{i}"
        if kind == "mamba":
            undrawn |= {f"{p}.{s}" for s in MAMBA_UNDRAWN | WEIGHT_UNDRAWN}
        if moe:
            undrawn |= {f"{p}.{s}" for s in MOE_UNDRAWN}
            undrawn |= {f"{p}.moe.expert.{e}.{s}" for e in range(4) for s in ("out", "up.weight", "down.weight")}
    assert set(jamba_trace.MOE_EXTRA_IDS) == MOE_UNDRAWN
    assert {s.removeprefix("mamba.") for s in jamba_trace.SCAN_IDS + jamba_trace.INNER_NORM_IDS} == \
        {s.removeprefix("mamba.") for s in MAMBA_UNDRAWN}
    ours = set(tr) | set(w)
    assert undrawn <= ours, sorted(undrawn - ours)
    drawn = ours - undrawn
    assert drawn <= set(blocks), sorted(drawn - set(blocks))
    # the weights' undrawn ids are the inventory's folded tensors and the experts' other matrices
    assert {k for k in w if k in undrawn and ".moe.expert." not in k} == {t.id for t in inventory.folded(spec)}
    # nothing in the scene is left unfed, once the scan is split per token as the live scene does
    from llmviz.scenes.ssm_live import scene_arrays

    fed = {**scene_arrays(tr, len(plan)), **dict(w.items())}
    assert set(blocks) <= set(fed), sorted(set(blocks) - set(fed))
    assert_blocks_are_fed_with_their_shapes(blocks, fed)
    assert_every_array_names_its_axes(tr)
    for bid in tr:
        assert all(a in jamba_trace.JAMBA_AXES or a in ("t", "t'", "c", "d", "hd", "f", "v") for a in tr.axes(bid))


def test_weights_are_the_slices_of_transformers_tensors(model):
    w, sd = jamba_trace.weights(model), model.state_dict()
    m, a, f = "model.layers.1.mamba", "model.layers.2.self_attn", "model.layers.3.feed_forward.experts"
    assert_mamba_weights_are_the_slices(w, sd, "blocks.1.mamba", m)
    assert np.array_equal(w["blocks.1.mamba.inner_norms"], np.concatenate(
        [sd[f"{m}.{k}_layernorm.weight"].numpy() for k in ("dt", "b", "c")]))
    assert np.array_equal(np.concatenate([w[f"blocks.2.attn.head.{h}.wq"] for h in range(4)]),
                          sd[f"{a}.q_proj.weight"].numpy())
    assert np.array_equal(np.concatenate([w[f"blocks.2.attn.kv_head.{g}.wv"] for g in range(2)]),
                          sd[f"{a}.v_proj.weight"].numpy())
    assert np.array_equal(np.concatenate([w["blocks.3.moe.expert.2"], w["blocks.3.moe.expert.2.up.weight"]]),
                          sd[f"{f}.gate_up_proj"][2].numpy())
    assert np.array_equal(w["blocks.3.moe.expert.2.down.weight"], sd[f"{f}.down_proj"][2].numpy())
    assert not np.array_equal(w["lm_head.weight"], w["embed.tok.weight"])


def test_bad_tokens_fail_in_one_line(model):
    assert_bad_tokens_fail_in_one_line(jamba_trace, model)


# ---- training ------------------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    runs = assert_training_is_deterministic(train_jamba, jamba_model)
    assert math.isfinite(runs[0].final_aux)


def test_a_saved_training_loads_back(tmp_path):
    lines = []
    result = train_jamba.train(seed=1, steps=2, log=lines.append)
    assert "step     2/2" in lines[-1] and set(result.eval_loss) == set(moe_corpus.DOMAINS)
    assert len(result.top1_share) == 2 and all(abs(sum(s) - 1) < 1e-6 for s in result.top1_share[0].values())
    assert_a_saved_training_loads_back(result, jamba_model, jamba_model.load_jamba, tmp_path / "j.safetensors")


# ---- transformers' folder -------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "jamba-tiny-hf"
    assert jamba_model.export_hf_folder(folder) == folder
    return folder


def test_the_exported_folder_loads_with_from_pretrained_and_computes_our_logits(exported, model):
    loaded, _ = assert_the_export_loads_with_from_pretrained(exported, model, transformers.JambaForCausalLM)
    assert_exported_logits_are_ours(model, jamba_trace, loaded, lengths=(1, 6, 29), seed=300)


def test_the_exported_config_matches_the_spec(exported, spec):
    arch, raw = spec.architecture, exported_config(exported, "jamba", "JambaForCausalLM")
    assert_config_fields(raw, (("num_hidden_layers", arch.n_layers), ("hidden_size", arch.d_model),
                               ("num_attention_heads", arch.n_heads), ("num_key_value_heads", arch.n_kv_heads),
                               ("intermediate_size", arch.d_ff), ("vocab_size", arch.vocab_size),
                               ("num_experts", arch.moe.n_experts), ("num_experts_per_tok", arch.moe.top_k),
                               ("expert_layer_offset", arch.moe.layers.start),
                               ("expert_layer_period", arch.moe.layers.step),
                               ("mamba_d_state", arch.ssm.d_state), ("mamba_d_conv", arch.ssm.d_conv),
                               ("mamba_expand", arch.ssm.expand), ("mamba_dt_rank", arch.ssm.dt_rank),
                               ("router_aux_loss_coef", arch.moe.aux_loss_coef)))
    assert raw["tie_word_embeddings"] is False and arch.unembedding == "untied"
    config = transformers.JambaConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
    assert config.layers_block_type == list(arch.layer_mixers())


def test_a_folder_with_files_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    assert_export_refuses_a_non_empty_folder(jamba_model.export_hf_folder, tmp_path)


def test_export_needs_no_transformers(tmp_path):
    assert_the_export_needs_no_transformers("jamba_model", tmp_path / "out")


