"""rwkv-tiny: the shipped weights are a transformers RwkvForCausalLM, and llmviz's traced forward
(models/sim/rwkv_trace.py) computes what transformers computes — logits, hidden states, the
blocks' projections, the final recurrent state, the recurrent form — with the WKV numerator and
denominator, the token shift and the mixes checked against formulas recomputed here in numpy.
Training is deterministic from a seed; the spec counts exactly transformers' parameters; the
export is a folder RwkvForCausalLM.from_pretrained loads."""
import numpy as np
import pytest
from tiny_model_support import (
    assert_a_saved_training_loads_back, assert_bad_tokens_fail_in_one_line, assert_damaged_file_is_refused,
    assert_every_array_names_its_axes, assert_export_refuses_a_non_empty_folder, assert_exported_logits_are_ours,
    assert_ids_are_the_blocks, assert_logits_and_hidden_states_equal, assert_models_command_lists,
    assert_shipped_file_loads_into, assert_spec_counts_every_parameter, assert_state_shapes_are_transformers,
    assert_steps_and_chunks_give_the_full_logits, assert_the_export_loads_with_from_pretrained,
    assert_the_export_needs_no_transformers, assert_training_is_deterministic,
    assert_transformers_own_decoding_agrees, close, exported_config, hf_forward, layout_blocks, model_fixture,
    random_tokens, recording, spec_fixture, torch, transformers)

from llmviz.models.params import count_params
from llmviz.models.sim import moe_corpus, rwkv_model, rwkv_trace, train_rwkv

LENGTHS = (1, 2, 17, 64, 90)          # one token, a few, the training window and past it

model = model_fixture(rwkv_model.load_rwkv)
spec = spec_fixture("rwkv-tiny")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_load_into_rwkv_for_causal_lm(model):
    assert type(model) is transformers.RwkvForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.attention_hidden_size, cfg.intermediate_size,
            cfg.context_length) == (2, 64, 64, 256, 64)
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.rescale_every == 0
    # independently of load_rwkv: the file's tensors into a fresh transformers model, strictly
    fresh = transformers.RwkvForCausalLM(transformers.RwkvConfig(
        vocab_size=96, context_length=64, hidden_size=64, num_hidden_layers=2, attention_hidden_size=64,
        intermediate_size=256, rescale_every=0, tie_word_embeddings=False))
    assert_shipped_file_loads_into(fresh, model, rwkv_model.shipped_weights_path())   # nothing missing or unexpected
    # RWKV-4's head is its own matrix, as transformers' RwkvConfig has it by default
    assert not cfg.tie_word_embeddings
    assert model.head.weight.data_ptr() != model.rwkv.embeddings.weight.data_ptr()
    assert not torch.equal(model.head.weight, model.rwkv.embeddings.weight)


def test_state_shapes_are_transformers_names_and_shapes(model):
    assert_state_shapes_are_transformers(rwkv_model, model)


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    assert_spec_counts_every_parameter(spec, model, at_most=300_000)
    assert not spec.architecture.tied_embeddings and spec.kind == "ssm" and spec.architecture.mixer == "rwkv4"
    # the spec's shape is the model's
    a = spec.architecture
    assert (a.n_layers, a.d_model, a.d_ff, a.vocab_size, a.context_length) == (
        model.config.num_hidden_layers, model.config.hidden_size, model.config.intermediate_size,
        model.config.vocab_size, model.config.context_length)


def test_a_differently_shaped_spec_still_counts_transformers_exactly():
    """The inventory's RWKV-4 tensors against transformers' for another shape (3 layers, 32 wide)."""
    from llmviz.models.spec import parse_spec

    spec = parse_spec({"id": "x", "name": "x", "kind": "ssm", "sources": ["test"], "architecture": {
        "n_layers": 3, "d_model": 32, "mixer": "rwkv4", "d_ff": 80, "vocab_size": 96, "pos_encoding": "none",
        "norm": "layernorm", "activation": "relu2", "unembedding": "untied"}})
    with torch.device("meta"):
        hf = transformers.RwkvForCausalLM(transformers.RwkvConfig(
            vocab_size=96, hidden_size=32, num_hidden_layers=3, intermediate_size=80, rescale_every=0))
    assert count_params(spec).total == sum(p.numel() for p in hf.parameters())


def test_models_command_lists_it_with_that_count(capsys, model):
    assert_models_command_lists(capsys, "rwkv-tiny", model)


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    assert_damaged_file_is_refused(tmp_path, rwkv_model.load_rwkv, rwkv_model.state_tensors(model),
                                   "rwkv.blocks.1.attention.time_decay", np.s_[:8], "rwkv-tiny", n_layers=2)


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    # transformers' hidden_states: each block's output, then the final LayerNorm's (no embedding)
    assert_logits_and_hidden_states_equal(model, rwkv_trace, length, resid="resid2")


def test_an_untrained_model_of_another_shape_also_equals_transformers():
    """Not a property of one set of weights: a fresh, perturbed 3-layer model with d_ff ≠ 4·d."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12)
        other = rwkv_model.build_model({"n_layers": 3, "d_model": 32, "d_ff": 80})
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.2 * torch.randn_like(p))
    tokens = random_tokens(33, seed=9)
    theirs = hf_forward(other, tokens, output_hidden_states=True, use_cache=True)
    trace = rwkv_trace.trace(other, tokens)
    close(trace["logits"], theirs.logits[0], "logits")
    for i in range(3):
        close(trace[f"blocks.{i}.resid2"], theirs.hidden_states[i][0], f"layer {i} output")
    for ours, hf in zip(rwkv_trace.final_state(other, tokens), theirs.state):
        close(ours, hf[0], "state")


def test_block_intermediates_equal_transformers_modules(model):
    """Hooks on transformers' own modules catch what goes into and out of each projection."""
    tokens = random_tokens(23, seed=7)
    parts = ("pre_ln", "ln1", "ln2", "attention", "attention.key", "attention.value", "attention.receptance",
             "attention.output", "feed_forward", "feed_forward.key", "feed_forward.value",
             "feed_forward.receptance")
    modules = {f"{i}.{part}": f"rwkv.blocks.{i}.{part}" for i in range(model.config.num_hidden_layers)
               for part in parts if part != "pre_ln" or i == 0}
    with recording(model, modules) as seen:
        hf_forward(model, tokens, use_cache=False)
    tr = rwkv_trace.trace(model, tokens)
    close(tr["ln0.out"], seen["0.pre_ln"][1], "ln0 (pre_ln)")
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        close(tr[f"{p}.ln1.out"], seen[f"{i}.ln1"][1], "ln1")
        close(tr[f"{p}.ln2.out"], seen[f"{i}.ln2"][1], "ln2")
        close(tr[f"{p}.time_mix.key"], seen[f"{i}.attention.key"][1], "time-mix key")
        close(tr[f"{p}.time_mix.value"], seen[f"{i}.attention.value"][1], "time-mix value")
        close(tr[f"{p}.time_mix.receptance"], seen[f"{i}.attention.receptance"][1], "time-mix receptance")
        gated, out = seen[f"{i}.attention.output"]
        close(sigmoid(tr[f"{p}.time_mix.receptance"]) * tr[f"{p}.time_mix.wkv"], gated, "σ(r)·wkv")
        close(tr[f"{p}.time_mix.out"], out, "time-mix out")
        close(tr[f"{p}.time_mix.out"], seen[f"{i}.attention"][1], "attention module out")
        close(tr[f"{p}.channel_mix.key"], seen[f"{i}.feed_forward.key"][1], "channel-mix key")
        act, value = seen[f"{i}.feed_forward.value"]
        close(tr[f"{p}.channel_mix.act"], act, "ReLU²")
        close(tr[f"{p}.channel_mix.value"], value, "channel-mix value")
        close(tr[f"{p}.channel_mix.receptance"], seen[f"{i}.feed_forward.receptance"][1], "channel-mix receptance")
        close(tr[f"{p}.channel_mix.out"], seen[f"{i}.feed_forward"][1], "channel-mix out")


def test_wkv_state_and_mixes_follow_the_formulas(model):
    """Recomputed here in float64 numpy from the trace's inputs and the weights (formulas.md):
    the WKV numerator a_t and denominator b_t by the plain recurrence, without the max trick."""
    tokens = random_tokens(41, seed=3)
    tr, w = rwkv_trace.trace(model, tokens), rwkv_trace.weights(model)
    T = len(tokens)
    for i in range(model.config.num_hidden_layers):
        p = f"blocks.{i}"
        resid_in = tr["ln0.out"] if i == 0 else tr[f"blocks.{i - 1}.resid2"]
        x64 = resid_in.astype(np.float64)
        close(tr[f"{p}.ln1.mean"], x64.mean(-1), "mean")
        close(tr[f"{p}.ln1.std"], np.sqrt(x64.var(-1) + 1e-5), "std")
        h = tr[f"{p}.ln1.out"].astype(np.float64)
        shifted = np.concatenate([np.zeros((1, h.shape[1])), h[:-1]])
        close(tr[f"{p}.time_mix.shift"], shifted, "token shift")
        for name, mix in (("key", "mix_k"), ("value", "mix_v"), ("receptance", "mix_r")):
            mu = w[f"{p}.time_mix.{mix}"]
            close(tr[f"{p}.time_mix.{name}"], (mu * h + (1 - mu) * shifted) @ w[f"{p}.time_mix.{name}.weight"].T,
                  name)
        k, v = tr[f"{p}.time_mix.key"].astype(np.float64), tr[f"{p}.time_mix.value"].astype(np.float64)
        decay = np.exp(-np.exp(w[f"{p}.time_mix.decay"].astype(np.float64)))    # per-token factor e^{−w}
        bonus = np.exp(w[f"{p}.time_mix.bonus"].astype(np.float64))              # e^u
        a, b, size = np.zeros(k.shape[1]), np.zeros(k.shape[1]), np.zeros(k.shape[1])
        nums, dens, sizes, wkv = [], [], [], []
        for t in range(T):
            wkv.append((a + bonus * np.exp(k[t]) * v[t]) / (b + bonus * np.exp(k[t])))
            a, b = decay * a + np.exp(k[t]) * v[t], decay * b + np.exp(k[t])
            size = decay * size + np.exp(k[t]) * np.abs(v[t])   # Σ |terms| of a_t
            nums.append(a)
            dens.append(b)
            sizes.append(size)
        # a_t sums terms of both signs: float32 rounding is relative to Σ|terms|, not to a_t
        error = np.abs(tr[f"{p}.time_mix.num"] - np.stack(nums))
        assert (error <= 1e-5 + 1e-5 * np.stack(sizes)).all(), f"numerator a_t: {error.max()}"
        close(tr[f"{p}.time_mix.den"], np.stack(dens), "denominator b_t")
        close(tr[f"{p}.time_mix.wkv"], np.stack(wkv), "wkv")
        assert (tr[f"{p}.time_mix.den"] > 0).all()
        r = tr[f"{p}.time_mix.receptance"].astype(np.float64)
        close(tr[f"{p}.time_mix.out"], (sigmoid(r) * np.stack(wkv)) @ w[f"{p}.time_mix.out.weight"].T, "W_o")
        close(tr[f"{p}.resid1"], x64 + tr[f"{p}.time_mix.out"], "resid1")
        h2 = tr[f"{p}.ln2.out"].astype(np.float64)
        shifted2 = np.concatenate([np.zeros((1, h2.shape[1])), h2[:-1]])
        close(tr[f"{p}.channel_mix.shift"], shifted2, "channel-mix token shift")
        mk, mr = w[f"{p}.channel_mix.mix_k"], w[f"{p}.channel_mix.mix_r"]
        key = (mk * h2 + (1 - mk) * shifted2) @ w[f"{p}.channel_mix.key.weight"].T
        close(tr[f"{p}.channel_mix.key"], key, "channel-mix key")
        close(tr[f"{p}.channel_mix.act"], np.maximum(key, 0) ** 2, "ReLU²")
        rc = (mr * h2 + (1 - mr) * shifted2) @ w[f"{p}.channel_mix.receptance.weight"].T
        close(tr[f"{p}.channel_mix.receptance"], rc, "channel-mix receptance")
        close(tr[f"{p}.channel_mix.out"], sigmoid(rc) * tr[f"{p}.channel_mix.value"], "σ(r)·value")


@pytest.mark.parametrize("length", (1, 5, 30))
def test_final_state_equals_transformers_state(model, length):
    tokens = random_tokens(length, seed=100 + length)
    theirs = hf_forward(model, tokens, use_cache=True).state
    ours = rwkv_trace.final_state(model, tokens)
    L, d = model.config.num_hidden_layers, model.config.hidden_size
    assert len(ours) == len(theirs) == 5
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == (d, L)
        close(a, b[0], f"state[{k}]")
    # the scaled numerator and denominator times e^max are the trace's a_T, b_T
    tr = rwkv_trace.trace(model, tokens)
    for i in range(L):
        scale = np.exp(ours[4][:, i].astype(np.float64))
        close(ours[2][:, i] * scale, tr[f"blocks.{i}.time_mix.num"][-1], "a_T")
        close(ours[3][:, i] * scale, tr[f"blocks.{i}.time_mix.den"][-1], "b_T")
        close(ours[1][:, i], tr[f"blocks.{i}.ln1.out"][-1], "attention shift")
        close(ours[0][:, i], tr[f"blocks.{i}.ln2.out"][-1], "feed-forward shift")


def test_the_recurrent_form_gives_the_full_forward_logits(model):
    tokens = random_tokens(40, seed=11)
    # token by token, then chunks carried by the state, as a long sequence streams
    state = assert_steps_and_chunks_give_the_full_logits(model, rwkv_trace, tokens)
    for ours, streamed in zip(rwkv_trace.final_state(model, tokens), state.as_list()):
        close(streamed[0], ours, "streamed state")


def test_transformers_own_state_passing_agrees_with_our_steps(model):
    tokens = random_tokens(12, seed=5)
    assert_transformers_own_decoding_agrees(model, rwkv_trace, tokens, prefix=5, carry="state")
    # and our state goes into transformers' model: the same next logits
    with torch.inference_mode():
        _, state = rwkv_trace.forward(model, torch.tensor([tokens[:9]]))
    ours, _ = rwkv_trace.step(model, tokens[9], state)
    theirs = hf_forward(model, [tokens[9]], state=state.as_list(), use_cache=True).logits[0, -1]
    close(ours, theirs, "state handed over")


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    """What the scene draws is the trace as the scene shows it (scenes/ssm_live.py): every recorded array
    under its id, the hidden attention α (d_model, T, T) as its mean over the channels, and nothing unfed."""
    from llmviz.scenes.ssm_live import scene_arrays_rwkv

    tokens = random_tokens(11, seed=1)
    tr, w = rwkv_trace.trace(model, tokens), rwkv_trace.weights(model)
    blocks = layout_blocks(spec, len(tokens))
    state = {f"blocks.{i}.{s}" for i in range(2) for s in rwkv_trace.STATE_IDS}
    assert state <= set(blocks)           # the state per token is drawn, as recorded
    shown = scene_arrays_rwkv(tr, 2)
    drawn = {bid for bid in shown if bid in tr} | set(w)        # the carried-in rows (…_init) feed the hover only
    assert_ids_are_the_blocks(drawn, blocks, shown, w)
    assert_every_array_names_its_axes(tr)
    for bid in tr:
        assert np.isfinite(tr[bid]).all(), bid


@pytest.mark.parametrize("carried", (0, 13))
def test_the_hidden_attention_reproduces_wkv(model, carried):
    """α from the keys and the decay alone, applied to the values, gives the trace's WKV (transformers-checked)
    channel by channel; from the start each row sums to 1 (a softmax attention), and in a stream the share
    the rows leave is the carried state's, num/den of the state handed in."""
    tokens = random_tokens(40, seed=12)
    state = None
    if carried:
        with torch.inference_mode():
            _, state = rwkv_trace.forward(model, torch.tensor([tokens[:carried]]))
    tr = rwkv_trace.trace(model, tokens[carried:], state)
    for i in range(2):
        p = f"blocks.{i}.time_mix"
        alpha = tr[f"{p}.alpha"].astype(np.float64)
        v = tr[f"{p}.value"].astype(np.float64)
        T = v.shape[0]
        assert alpha.shape == (model.config.hidden_size, T, T)
        assert np.all(np.triu(alpha, 1) == 0) and alpha.min() >= 0          # causal weights
        read = np.einsum("cts,sc->tc", alpha, v)
        share = 1.0 - alpha.sum(-1)                                          # (c, T)
        if state is None:
            assert np.abs(share).max() <= 1e-6
        else:
            before = (state.num[0, :, i] / state.den[0, :, i]).double().numpy()
            read += (share * before[:, None]).T
        close(tr[f"{p}.wkv"], read, f"layer {i}: α·v")


def test_weights_are_transformers_tensors(model):
    w, sd = rwkv_trace.weights(model), model.state_dict()
    a, m = "rwkv.blocks.1.attention", "rwkv.blocks.1.feed_forward"
    assert np.array_equal(w["blocks.1.time_mix.decay"], sd[f"{a}.time_decay"].numpy())   # w, decay e^{−e^w}
    assert np.array_equal(w["blocks.1.time_mix.bonus"], sd[f"{a}.time_first"].numpy())
    assert np.array_equal(w["blocks.1.time_mix.mix_v"], sd[f"{a}.time_mix_value"].numpy().reshape(-1))
    assert np.array_equal(w["blocks.1.time_mix.out.weight"], sd[f"{a}.output.weight"].numpy())
    assert np.array_equal(w["blocks.1.channel_mix.value.weight"], sd[f"{m}.value.weight"].numpy())
    assert np.array_equal(w["ln0.weight"], sd["rwkv.blocks.0.pre_ln.weight"].numpy())
    assert np.array_equal(w["lm_head.weight"], sd["head.weight"].numpy())
    assert w["blocks.0.channel_mix.key.weight"].shape == (256, 64)
    assert sum(a.size for a in w.values()) == sum(p.numel() for p in model.parameters())


def test_bad_tokens_fail_in_one_line(model):
    assert_bad_tokens_fail_in_one_line(rwkv_trace, model)


# ---- training and export -------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    assert_training_is_deterministic(train_rwkv, rwkv_model)


def test_a_trained_file_round_trips(tmp_path):
    result = train_rwkv.train(seed=1, steps=2, log=lambda line: None, report=False)
    assert_a_saved_training_loads_back(result, rwkv_model, rwkv_model.load_rwkv, tmp_path / "r.safetensors")


def test_export_is_a_folder_rwkv_for_causal_lm_loads(tmp_path, model):
    folder = tmp_path / "rwkv-tiny-hf"
    exported = rwkv_model.export_hf_folder(folder)
    assert exported.parameters == sum(p.numel() for p in model.parameters())
    config = exported_config(folder, "rwkv", "RwkvForCausalLM")
    assert config["tie_word_embeddings"] is False and config["rescale_every"] == 0
    loaded, _ = assert_the_export_loads_with_from_pretrained(folder, model, transformers.RwkvForCausalLM)
    assert_exported_logits_are_ours(model, rwkv_trace, loaded, lengths=(20,), seed=1)   # seed 21
    assert_export_refuses_a_non_empty_folder(rwkv_model.export_hf_folder, folder)


def test_the_export_needs_no_transformers(tmp_path):
    # transformers made unimportable: the export reads the checked weights file and writes JSON
    assert_the_export_needs_no_transformers("rwkv_model", tmp_path / "out")
