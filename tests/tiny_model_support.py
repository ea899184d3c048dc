"""Shared by the tests of the small recurrent and hybrid models (mamba-tiny, mamba2-tiny, rwkv-tiny,
jamba-tiny), each a transformers model that llmviz traces: the fixtures, running transformers' forward,
the float comparison, and the checks that are the same for every one of them, parametrised by the
model's module (``*_model``), its trace module (``*_trace``), its training module and its loader.

Importing this skips the test file where torch or transformers is missing."""
import contextlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

TOL = dict(atol=1e-5, rtol=1e-5)
EXPORTED_FILES = ["config.json", "model.safetensors"]


# ---- fixtures --------------------------------------------------------------------------------

def model_fixture(load):
    """A module-scoped ``model`` fixture: the shipped weights through ``load`` (e.g. mamba_model.load_mamba)."""
    @pytest.fixture(scope="module")
    def model():
        return load()
    return model


def spec_fixture(model_id: str):
    """A module-scoped ``spec`` fixture: the built-in registry's spec of ``model_id``."""
    @pytest.fixture(scope="module")
    def spec():
        from llmviz.models.registry import load_registry

        return load_registry(include_user=False).get(model_id)
    return spec


# ---- inputs, transformers' forward, the comparison --------------------------------------------

def random_tokens(length: int, seed: int) -> list[int]:
    from llmviz.models.sim import moe_corpus

    return torch.randint(len(moe_corpus.ALPHABET), (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def hf_forward(model, tokens, **kwargs):
    """transformers' forward of one row of ``tokens``, without gradients."""
    with torch.inference_mode():
        return model(torch.tensor([tokens]), **kwargs)


def close(ours, theirs, what, **tol):
    """ours equals theirs (a tensor or an array) within TOL, or within ``tol`` where given."""
    np.testing.assert_allclose(ours, np.asarray(theirs), err_msg=what, **(tol or TOL))


def batch_row(args, output):
    """What a forward hook keeps by default: batch row 0 of the first input and of the (first) output."""
    out = output[0] if isinstance(output, tuple) else output
    return args[0][0].detach().clone(), out[0].detach().clone()


@contextlib.contextmanager
def recording(model, modules: dict, record=batch_row):
    """Forward hooks on transformers' own modules while the block runs: yields a dict that fills with
    ``record(args, output)`` under each key of ``modules`` (key: the module's name in ``model``)."""
    seen = {}

    def keep(key):
        def hook(module, args, output):   # returns None: the output is left as it is
            seen[key] = record(args, output)
        return hook

    handles = [model.get_submodule(name).register_forward_hook(keep(key)) for key, name in modules.items()]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


# ---- formulas, in float64 numpy ---------------------------------------------------------------

def silu(x):
    return x / (1 + np.exp(-x))


def rms(x, eps):
    """The root mean square over the last axis, as an RMSNorm divides by it."""
    return np.sqrt((np.asarray(x, dtype=np.float64) ** 2).mean(-1) + eps)


def causal_conv(x, kernel, bias):
    """The depthwise causal convolution of (T, C) ``x`` with a (C, k) kernel, zeros before the first token."""
    x = np.asarray(x, dtype=np.float64)
    k = kernel.shape[1]
    padded = np.concatenate([np.zeros((k - 1, x.shape[1])), x])
    return np.stack([(padded[t:t + k] * kernel.T).sum(0) for t in range(len(x))]) + bias


def selective_scan(dA, dB, u):
    """Mamba's recurrence h_t = dA_t ⊙ h_{t-1} + dB_t · u_t from h = 0: every h_t, stacked (T, inner, N)."""
    h, hs = np.zeros(dA.shape[1:]), []
    for t in range(len(dA)):
        h = dA[t] * h + dB[t] * u[t][:, None]
        hs.append(h)
    return np.stack(hs)


def assert_implicit_attention_reproduces_y(alpha, x, D, y):
    """y = α·x + D·x with α (inner, T, T) causal: nothing from later tokens (Ali, Zimerman & Wolf 2024)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    assert not np.triu(alpha, k=1).any()
    close(np.einsum("its,si->ti", alpha, x) + D * x, y, "α·x + D·x")


def assert_mamba_projections(tr, p, in_proj, x_proj, out_proj, inner, r, n):
    """A Mamba-1 mixer's trace under ``p`` (blocks.{i}) against the (input, output) that hooks saw at its
    in_proj (x | z), x_proj (conv_act in; Δ-low | B | C out) and out_proj (gated in, out)."""
    _, xz = in_proj
    close(tr[f"{p}.mamba.x"], xz[:, :inner], "x")
    close(tr[f"{p}.mamba.z"], xz[:, inner:], "z")
    conv_act, dbc = x_proj
    close(tr[f"{p}.mamba.conv_act"], conv_act, "conv_act")
    close(tr[f"{p}.mamba.dt_low"], dbc[:, :r], "dt_low")
    close(tr[f"{p}.mamba.B"], dbc[:, r:r + n], "B")
    close(tr[f"{p}.mamba.C"], dbc[:, r + n:], "C")
    gated, out = out_proj
    close(tr[f"{p}.mamba.gated"], gated, "gated")
    close(tr[f"{p}.mamba.out"], out, "mixer out")


def assert_mamba_weights_are_the_slices(w, sd, p, m):
    """A Mamba-1 mixer's weights under ``p`` (blocks.{i}.mamba) are the slices of transformers' tensors
    under ``m``: in_proj = x | z, x_proj = Δ-low | B | C, the depthwise conv's kernel."""
    assert np.array_equal(np.concatenate([w[f"{p}.x.weight"], w[f"{p}.z.weight"]]), sd[f"{m}.in_proj.weight"].numpy())
    assert np.array_equal(np.concatenate([w[f"{p}.dt_low.weight"], w[f"{p}.B.weight"], w[f"{p}.C.weight"]]),
                          sd[f"{m}.x_proj.weight"].numpy())
    assert np.array_equal(w[f"{p}.conv.weight"], sd[f"{m}.conv1d.weight"][:, 0].numpy())


# ---- the weights are transformers' model ------------------------------------------------------

def assert_shipped_file_loads_into(fresh, model, path, tied_head=None):
    """The weights file's tensors load into ``fresh`` (a transformers model built here from a hand-written
    config) with nothing unexpected and nothing missing but the tied head (stored once), and are ``model``'s."""
    from safetensors.torch import load_file

    missing, unexpected = fresh.load_state_dict(load_file(str(path)), strict=False)
    assert missing == ([tied_head] if tied_head else []) and unexpected == []
    if tied_head:
        fresh.tie_weights()
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def assert_state_shapes_are_transformers(model_module, model, leave_out=()):
    """model_module.state_shapes, for the model's config, are transformers' names and shapes (but ``leave_out``)."""
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in leave_out}
    assert model_module.state_shapes(model_module.our_config(model)) == theirs


def assert_spec_counts_every_parameter(spec, model, at_most: int) -> int:
    """transformers' parameter count is at most ``at_most`` and the spec counts exactly it; returns it."""
    from llmviz.models.params import count_params

    theirs = sum(p.numel() for p in model.parameters())
    assert theirs <= at_most
    assert count_params(spec).total == theirs
    return theirs


def assert_models_command_lists(capsys, model_id: str, model):
    """`llmviz models` lists ``model_id`` once, with transformers' parameter count."""
    from llmviz.models.params import human
    from llmviz.scenes.cli.main import main

    assert main(["models"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == [model_id]]
    assert len(rows) == 1, rows
    assert human(sum(p.numel() for p in model.parameters())) in rows[0].split(), rows[0]


def assert_damaged_file_is_refused(tmp_path, load, state: dict, tensor: str, index, model_id: str, n_layers: int):
    """A weights file whose ``tensor`` is cut to ``state[tensor][index]`` is refused by ``load`` with a
    WeightsError naming the tensor and its shape."""
    from safetensors.torch import save

    from llmviz.models.sim.weights_file import WeightsError

    state = dict(state)
    state[tensor] = state[tensor][index].contiguous()
    info = {"model": model_id, "config": {"n_layers": n_layers}}
    path = tmp_path / "bad.safetensors"
    path.write_bytes(save(state, metadata={"llmviz": json.dumps(info)}))
    with pytest.raises(WeightsError, match=f"{tensor.rsplit('.', 1)[-1]}.*shape"):
        load(path)


# ---- the trace computes what transformers computes --------------------------------------------

def assert_logits_and_probs_equal(tr, theirs):
    close(tr["logits"], theirs.logits[0], "logits")
    close(tr["probs"], torch.softmax(theirs.logits[0], -1), "probs")


def assert_logits_and_hidden_states_equal(model, trace_module, length: int, resid: str):
    """For ``length`` random tokens: the trace's logits and probabilities are transformers', and its
    hidden_states are each layer's output (``blocks.{i}.{resid}``), then the final norm's."""
    tokens = random_tokens(length, seed=length)
    theirs = hf_forward(model, tokens, output_hidden_states=True, use_cache=False)
    tr = trace_module.trace(model, tokens)
    assert_logits_and_probs_equal(tr, theirs)
    hidden = theirs.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1
    for i in range(model.config.num_hidden_layers):
        close(tr[f"blocks.{i}.{resid}"], hidden[i][0], f"layer {i} output")
    close(tr["ln_f.out"], hidden[-1][0], "final norm")


# The chunks a 40-token sequence streams in: several tokens, one, several, the rest.
CHUNKS = (slice(0, 7), slice(7, 8), slice(8, 25), slice(25, None))


def assert_steps_and_chunks_give_the_full_logits(model, trace_module, tokens, n_steps=None):
    """trace_module.step token by token (the first ``n_steps``, all by default) and trace_module.forward
    chunk by chunk (CHUNKS), each carrying its state, give the full trace's logits; returns the state
    after the last chunk."""
    full = trace_module.trace(model, tokens)["logits"]
    n_steps = len(tokens) if n_steps is None else n_steps
    state, stepped = None, []
    for token in tokens[:n_steps]:
        logits, state = trace_module.step(model, token, state)
        stepped.append(logits)
    close(np.stack(stepped), full[:n_steps], "token by token")
    state, parts = None, []
    for chunk in CHUNKS:
        with torch.inference_mode():
            logits, state = trace_module.forward(model, torch.tensor([tokens[chunk]]), state)[:2]
        parts.append(logits[0].numpy())
    close(np.concatenate(parts), full, "chunk by chunk")
    return state


def assert_transformers_own_decoding_agrees(model, trace_module, tokens, prefix: int, carry="cache",
                                            what="transformers' recurrent path"):
    """transformers' forward of the first ``prefix`` tokens, then one token at a time handing its cache
    (the output's and the keyword's name: ``carry``) on, gives the trace's logits from token prefix-1 on."""
    out = hf_forward(model, tokens[:prefix], use_cache=True)
    theirs = [out.logits[0, -1]]
    for token in tokens[prefix:]:
        out = hf_forward(model, [token], use_cache=True, **{carry: getattr(out, carry)})
        theirs.append(out.logits[0, -1])
    full = trace_module.trace(model, tokens)["logits"]
    close(full[prefix - 1:], torch.stack(theirs), what)


def assert_mamba_final_states_equal_cache(model, trace_module, length: int, ssm_shape, conv_shape):
    """For ``length`` random tokens (seed 100 + length): trace_module.final_state's SSM and conv states,
    (layers, *ssm_shape) and (layers, *conv_shape), are transformers' cache's, layer by layer."""
    tokens = random_tokens(length, seed=100 + length)
    cache = hf_forward(model, tokens, use_cache=True).cache
    ssm, conv = trace_module.final_state(model, tokens)
    L = model.config.num_hidden_layers
    assert ssm.shape == (L, *ssm_shape) and conv.shape == (L, *conv_shape)
    for i in range(L):
        close(ssm[i], cache.get_recurrent_state(i)[0], f"layer {i} ssm state")
        close(conv[i], cache.get_conv_state(i)[0], f"layer {i} conv state")


def assert_the_mamba_recurrent_form_gives_the_full_logits(model, trace_module):
    """40 random tokens stepped and streamed in chunks (assert_steps_and_chunks_give_the_full_logits)
    end in the SSM and conv states of trace_module.final_state."""
    tokens = random_tokens(40, seed=11)
    state = assert_steps_and_chunks_give_the_full_logits(model, trace_module, tokens)
    ssm, conv = trace_module.final_state(model, tokens)
    close(state.ssm[0], ssm, "streamed ssm state")
    close(state.conv[0], conv, "streamed conv state")


def assert_bad_tokens_fail_in_one_line(trace_module, model):
    with pytest.raises(ValueError, match=r"tokens: ids must lie in \[0, 96\)"):
        trace_module.trace(model, [3, 96])
    with pytest.raises(ValueError, match="at least one token"):
        trace_module.trace(model, [])


# ---- the trace's ids are the scene's ----------------------------------------------------------

def layout_blocks(spec, n_tokens: int) -> dict:
    """The layout's blocks for ``n_tokens``: id → (rows, cols)."""
    from llmviz.scenes.layout import layout_model

    layout = layout_model(spec, n_tokens=n_tokens)
    return {bid: (int(r), int(c)) for bid, r, c in zip(layout.ids, layout.rows, layout.cols)}


def assert_blocks_are_fed_with_their_shapes(blocks: dict, *sources):
    """Every block is fed by an array (from the first of ``sources`` that has its id) of float32 or
    int64 values, of the block's shape or of its size flattened."""
    for bid, (rows, cols) in blocks.items():
        array = next(source[bid] for source in sources if bid in source)
        assert array.dtype in (np.float32, np.int64), bid
        assert array.shape == (rows, cols) or (array.ndim == 1 and array.size == rows * cols), (bid, array.shape)


def assert_ids_are_the_blocks(drawn: set, blocks: dict, *sources):
    """What is drawn is exactly the layout's blocks (nothing in the scene is left unfed), each fed as
    assert_blocks_are_fed_with_their_shapes checks."""
    assert drawn <= set(blocks), sorted(drawn - set(blocks))
    assert set(blocks) <= drawn, sorted(set(blocks) - drawn)
    assert_blocks_are_fed_with_their_shapes(blocks, *sources)


def assert_every_array_names_its_axes(recorded):
    for bid in recorded:
        assert len(recorded.axes(bid)) == recorded[bid].ndim, bid


# ---- training -------------------------------------------------------------------------------

def assert_training_is_deterministic(train_module, model_module):
    """3 steps from seed 3, twice, give identical file bytes; seed 4 gives others; returns the two runs."""
    runs = [train_module.train(seed=3, steps=3, log=lambda line: None, report=False) for _ in range(2)]
    data = [model_module.safetensors_bytes(r.model, {"seed": 3}) for r in runs]
    assert data[0] == data[1]
    other = train_module.train(seed=4, steps=3, log=lambda line: None, report=False)
    assert model_module.safetensors_bytes(other.model, {"seed": 3}) != data[0]
    assert math.isfinite(runs[0].final_loss)
    return runs


def assert_a_saved_training_loads_back(result, model_module, load, path):
    """A training's model saved to ``path`` loads back through ``load`` with every tensor the same."""
    model_module.save_safetensors(result.model, path, {"seed": 1, "steps": 2})
    loaded = load(path)
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name


# ---- the transformers folder ----------------------------------------------------------------

def assert_the_export_loads_with_from_pretrained(folder, model, model_class):
    """The exported ``folder`` holds config.json and model.safetensors, which ``model_class`` and
    AutoModelForCausalLM load with nothing missing, unexpected or mismatched, every tensor ``model``'s;
    returns (loaded, auto), in eval mode."""
    assert sorted(p.name for p in folder.iterdir()) == EXPORTED_FILES
    loaded, info = model_class.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    auto = transformers.AutoModelForCausalLM.from_pretrained(str(folder))
    assert type(auto) is model_class
    return loaded.eval(), auto.eval()


def assert_exported_logits_are_ours(model, trace_module, exported_model, lengths, seed: int):
    """For each length, random tokens (seed + length): the exported model's logits are the trace's."""
    for length in lengths:
        tokens = random_tokens(length, seed=seed + length)
        close(trace_module.trace(model, tokens)["logits"], hf_forward(exported_model, tokens).logits[0],
              f"exported logits, {length} tokens")


def exported_config(folder, model_type: str, model_class: str) -> dict:
    """The exported config.json, after checking its model_type and architectures."""
    raw = json.loads((folder / "config.json").read_text())
    assert raw["model_type"] == model_type and raw["architectures"] == [model_class]
    return raw


def assert_config_fields(raw: dict, expected):
    for field, value in expected:
        assert raw[field] == value, field


def assert_export_refuses_a_non_empty_folder(export, folder):
    """``export(folder)`` of a folder with files in it fails with ExportError and leaves them as they were."""
    from llmviz.models.export_hf import ExportError

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert before
    with pytest.raises(ExportError, match="not empty"):
        export(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def assert_the_export_needs_no_transformers(model_module: str, out):
    """With transformers made unimportable, llmviz.models.sim.<model_module>.export_hf_folder(out), in a
    fresh interpreter, reads the checked weights file and writes the folder."""
    code = (f"import sys; sys.modules['transformers'] = None; from llmviz.models.sim import {model_module}; "
            f"{model_module}.export_hf_folder({str(out)!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == EXPORTED_FILES
