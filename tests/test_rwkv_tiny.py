"""rwkv-tiny: the shipped weights are a transformers RwkvForCausalLM, and llmviz's traced forward
(models/sim/rwkv_trace.py) computes what transformers computes — logits, hidden states, the
blocks' projections, the final recurrent state, the recurrent form — with the WKV numerator and
denominator, the token shift and the mixes checked against formulas recomputed here in numpy.
Training is deterministic from a seed; the spec counts exactly transformers' parameters; the
export is a folder RwkvForCausalLM.from_pretrained loads."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from llmviz.models.params import count_params, human  # noqa: E402
from llmviz.models.registry import load_registry  # noqa: E402
from llmviz.models.sim import moe_corpus, rwkv_model, rwkv_trace, train_rwkv  # noqa: E402
from llmviz.models.sim.weights_file import WeightsError  # noqa: E402
from llmviz.scenes.cli.main import main  # noqa: E402
from llmviz.scenes.layout import layout_model  # noqa: E402

TOL = dict(atol=1e-5, rtol=1e-5)
LENGTHS = (1, 2, 17, 64, 90)          # one token, a few, the training window and past it


@pytest.fixture(scope="module")
def model():
    return rwkv_model.load_rwkv()


@pytest.fixture(scope="module")
def spec():
    return load_registry(include_user=False).get("rwkv-tiny")


def random_tokens(length: int, seed: int) -> list[int]:
    return torch.randint(len(moe_corpus.ALPHABET), (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def hf_forward(model, tokens, **kwargs):
    with torch.inference_mode():
        return model(torch.tensor([tokens]), **kwargs)


def close(ours, theirs, what, **tol):
    np.testing.assert_allclose(ours, np.asarray(theirs), err_msg=what, **(tol or TOL))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- the weights are transformers' model ---------------------------------------------------

def test_shipped_weights_load_into_rwkv_for_causal_lm(model):
    from safetensors.torch import load_file

    assert type(model) is transformers.RwkvForCausalLM
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.attention_hidden_size, cfg.intermediate_size,
            cfg.context_length) == (2, 64, 64, 256, 64)
    assert cfg.vocab_size == len(moe_corpus.ALPHABET) == 96 and cfg.rescale_every == 0
    # independently of load_rwkv: the file's tensors into a fresh transformers model, strictly
    fresh = transformers.RwkvForCausalLM(transformers.RwkvConfig(
        vocab_size=96, context_length=64, hidden_size=64, num_hidden_layers=2, attention_hidden_size=64,
        intermediate_size=256, rescale_every=0, tie_word_embeddings=False))
    fresh.load_state_dict(load_file(str(rwkv_model.shipped_weights_path())), strict=True)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    # RWKV-4's head is its own matrix, as transformers' RwkvConfig has it by default
    assert not cfg.tie_word_embeddings
    assert model.head.weight.data_ptr() != model.rwkv.embeddings.weight.data_ptr()
    assert not torch.equal(model.head.weight, model.rwkv.embeddings.weight)


def test_state_shapes_are_transformers_names_and_shapes(model):
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert rwkv_model.state_shapes(rwkv_model.our_config(model)) == theirs


def test_parameter_count_is_small_and_the_spec_counts_it_exactly(model, spec):
    theirs = sum(p.numel() for p in model.parameters())
    assert theirs <= 300_000
    assert count_params(spec).total == theirs
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
    assert main(["models"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["rwkv-tiny"]]
    assert len(rows) == 1, rows
    assert human(sum(p.numel() for p in model.parameters())) in rows[0].split(), rows[0]


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, model):
    from safetensors.torch import save

    state = rwkv_model.state_tensors(model)
    state["rwkv.blocks.1.attention.time_decay"] = state["rwkv.blocks.1.attention.time_decay"][:8].contiguous()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(save(state, metadata={"llmviz": json.dumps({"model": "rwkv-tiny", "config": {"n_layers": 2}})}))
    with pytest.raises(WeightsError, match="time_decay.*shape"):
        rwkv_model.load_rwkv(path)


# ---- the trace computes what transformers computes -----------------------------------------

@pytest.mark.parametrize("length", LENGTHS)
def test_logits_and_hidden_states_equal_transformers(model, length):
    tokens = random_tokens(length, seed=length)
    theirs = hf_forward(model, tokens, output_hidden_states=True, use_cache=False)
    trace = rwkv_trace.trace(model, tokens)
    close(trace["logits"], theirs.logits[0], "logits")
    close(trace["probs"], torch.softmax(theirs.logits[0], -1), "probs")
    # transformers' hidden_states: each block's output, then the final LayerNorm's (no embedding)
    hidden = theirs.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1
    for i in range(model.config.num_hidden_layers):
        close(trace[f"blocks.{i}.resid2"], hidden[i][0], f"layer {i} output")
    close(trace["ln_f.out"], hidden[-1][0], "final norm")


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
    seen = {}

    def keep(name):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            seen[name] = (args[0][0].detach().clone(), out[0].detach().clone())
        return hook

    parts = ("pre_ln", "ln1", "ln2", "attention", "attention.key", "attention.value", "attention.receptance",
             "attention.output", "feed_forward", "feed_forward.key", "feed_forward.value",
             "feed_forward.receptance")
    handles = []
    for i in range(model.config.num_hidden_layers):
        for part in parts:
            if part == "pre_ln" and i > 0:
                continue
            module = model.get_submodule(f"rwkv.blocks.{i}.{part}")
            handles.append(module.register_forward_hook(keep(f"{i}.{part}")))
    try:
        hf_forward(model, tokens, use_cache=False)
    finally:
        for h in handles:
            h.remove()
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
    full = rwkv_trace.trace(model, tokens)["logits"]
    state, stepped = None, []
    for token in tokens:
        logits, state = rwkv_trace.step(model, token, state)
        stepped.append(logits)
    close(np.stack(stepped), full, "token by token")
    # chunks carried by the state, as a long sequence streams
    state, parts = None, []
    for chunk in (tokens[:7], tokens[7:8], tokens[8:25], tokens[25:]):
        with torch.inference_mode():
            logits, state = rwkv_trace.forward(model, torch.tensor([chunk]), state)
        parts.append(logits[0].numpy())
    close(np.concatenate(parts), full, "chunk by chunk")
    for ours, streamed in zip(rwkv_trace.final_state(model, tokens), state.as_list()):
        close(streamed[0], ours, "streamed state")


def test_transformers_own_state_passing_agrees_with_our_steps(model):
    tokens = random_tokens(12, seed=5)
    out = hf_forward(model, tokens[:5], use_cache=True)
    theirs = [out.logits[0, -1]]
    for token in tokens[5:]:
        out = hf_forward(model, [token], state=out.state, use_cache=True)
        theirs.append(out.logits[0, -1])
    full = rwkv_trace.trace(model, tokens)["logits"]
    close(full[4:], torch.stack(theirs), "transformers' recurrent path")
    # and our state goes into transformers' model: the same next logits
    with torch.inference_mode():
        _, state = rwkv_trace.forward(model, torch.tensor([tokens[:9]]))
    ours, _ = rwkv_trace.step(model, tokens[9], state)
    theirs = hf_forward(model, [tokens[9]], state=state.as_list(), use_cache=True).logits[0, -1]
    close(ours, theirs, "state handed over")


# ---- the trace's ids are the scene's ------------------------------------------------------

def test_every_id_is_a_layout_block_with_its_shape(model, spec):
    tokens = random_tokens(11, seed=1)
    tr, w = rwkv_trace.trace(model, tokens), rwkv_trace.weights(model)
    layout = layout_model(spec, n_tokens=len(tokens))
    blocks = {bid: (int(r), int(c)) for bid, r, c in zip(layout.ids, layout.rows, layout.cols)}
    state = {f"blocks.{i}.{s}" for i in range(2) for s in rwkv_trace.STATE_IDS}
    assert state <= set(blocks)           # the state per token is drawn, as recorded
    drawn = set(tr) | set(w)
    assert drawn <= set(blocks), sorted(drawn - set(blocks))
    assert set(blocks) <= drawn, sorted(set(blocks) - drawn)   # nothing in the scene is left unfed
    for bid in drawn:
        array = tr[bid] if bid in tr else w[bid]
        rows, cols = blocks[bid]
        assert array.dtype in (np.float32, np.int64), bid
        assert array.shape == (rows, cols) or (array.ndim == 1 and array.size == rows * cols), (bid, array.shape)
    for bid in tr:
        assert len(tr.axes(bid)) == tr[bid].ndim
        assert np.isfinite(tr[bid]).all(), bid


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
    with pytest.raises(ValueError, match=r"tokens: ids must lie in \[0, 96\)"):
        rwkv_trace.trace(model, [3, 96])
    with pytest.raises(ValueError, match="at least one token"):
        rwkv_trace.trace(model, [])


# ---- training and export -------------------------------------------------------------------

def test_training_a_few_steps_twice_gives_identical_bytes():
    runs = [train_rwkv.train(seed=3, steps=3, log=lambda line: None, report=False) for _ in range(2)]
    data = [rwkv_model.safetensors_bytes(r.model, {"seed": 3}) for r in runs]
    assert data[0] == data[1]
    other = train_rwkv.train(seed=4, steps=3, log=lambda line: None, report=False)
    assert rwkv_model.safetensors_bytes(other.model, {"seed": 3}) != data[0]
    assert math.isfinite(runs[0].final_loss)


def test_a_trained_file_round_trips(tmp_path):
    result = train_rwkv.train(seed=1, steps=2, log=lambda line: None, report=False)
    out = tmp_path / "r.safetensors"
    rwkv_model.save_safetensors(result.model, out, {"seed": 1, "steps": 2})
    loaded = rwkv_model.load_rwkv(out)
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name


def test_export_is_a_folder_rwkv_for_causal_lm_loads(tmp_path, model):
    folder = tmp_path / "rwkv-tiny-hf"
    exported = rwkv_model.export_hf_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert exported.parameters == sum(p.numel() for p in model.parameters())
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "rwkv" and config["architectures"] == ["RwkvForCausalLM"]
    assert config["tie_word_embeddings"] is False and config["rescale_every"] == 0
    loaded = transformers.RwkvForCausalLM.from_pretrained(folder).eval()
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    auto = transformers.AutoModelForCausalLM.from_pretrained(folder)
    assert type(auto) is transformers.RwkvForCausalLM
    tokens = random_tokens(20, seed=21)
    close(rwkv_trace.trace(model, tokens)["logits"], hf_forward(loaded, tokens).logits[0], "exported logits")
    from llmviz.models.export_hf import ExportError
    with pytest.raises(ExportError, match="not empty"):
        rwkv_model.export_hf_folder(folder)


def test_the_export_needs_no_transformers(tmp_path):
    import subprocess
    import sys

    # transformers made unimportable: the export reads the checked weights file and writes JSON
    code = ("import sys; sys.modules['transformers'] = None; from llmviz.models.sim import rwkv_model; "
            f"rwkv_model.export_hf_folder({str(tmp_path / 'out')!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
