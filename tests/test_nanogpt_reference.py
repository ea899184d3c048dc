"""The nano-GPT trace equals independent computations: transformers' GPT-2 and plain numpy."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from safetensors.numpy import load as load_numpy  # noqa: E402

from llmviz.models.sim import sort_task  # noqa: E402
from llmviz.models.sim.nanogpt import load_nanogpt, shipped_weights_path  # noqa: E402
from llmviz.models.sim.tensor_ids import AXES, activation_ids, weight_ids  # noqa: E402

TOL = 1e-5
L, H, C, D, V, CTX = 3, 3, 48, 16, 3, 11
INPUTS = [
    sort_task.encode("CBABBC" + "ABBBC"),  # the full 11-token context of the last prediction
    sort_task.encode("ACBCAB"),
    sort_task.encode("B"),
    [2, 0, 1, 1, 0, 2, 0, 0, 1, 1],
]


def close(actual, expected, what):
    # 1e-5 absolute, plus 1e-5 relative: logits reach about 12, where one float32 ulp is
    # already 1e-6 and a float64 reference legitimately differs by ~1e-5 absolute.
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=TOL, atol=TOL, err_msg=what)


@pytest.fixture(scope="module")
def model():
    return load_nanogpt()


@pytest.fixture(scope="module")
def raw():
    """The safetensors file as numpy arrays, read without any llmviz code."""
    return load_numpy(shipped_weights_path().read_bytes())


@pytest.fixture(scope="module")
def traces(model):
    return [model.trace(x) for x in INPUTS]


# ---- the id scheme --------------------------------------------------------------------------

def test_trace_keys_and_axes_follow_tensor_ids(traces):
    expected = activation_ids(L, H)
    for tokens, trace in zip(INPUTS, traces):
        assert list(trace) == [i for i, _ in expected]
        sizes = {"t": len(tokens), "t'": len(tokens), "c": C, "d": D, "f": 4 * C, "v": V}
        for tensor_id, axes in expected:
            assert trace.axes(tensor_id) == axes
            assert set(axes) <= set(AXES)
            assert trace[tensor_id].shape == tuple(sizes[a] for a in axes), tensor_id
            assert not trace[tensor_id].flags.writeable


def test_weights_keys_follow_tensor_ids(model):
    weights = model.weights()
    expected = weight_ids(L, H)
    assert list(weights) == [i for i, _ in expected]
    sizes = {"c": C, "d": D, "f": 4 * C, "v": V, "p": CTX, "hd": C}
    for tensor_id, axes in expected:
        assert weights[tensor_id].shape == tuple(sizes[a] for a in axes), tensor_id
    assert sum(w.size for w in weights.values()) == 85_728  # the parameter count of llm-viz's checkpoint


def test_trace_logits_equal_batched_forward(model, traces):
    for tokens, trace in zip(INPUTS, traces):
        with torch.inference_mode():
            logits = model(torch.tensor([tokens]))[0].numpy()
        close(trace["logits"], logits, "logits")
        assert trace["tokens"].tolist() == tokens


# ---- against transformers' GPT-2 -------------------------------------------------------------

@pytest.fixture(scope="module")
def hf_model(raw):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=V, n_positions=CTX, n_embd=C, n_layer=L, n_head=H, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, tie_word_embeddings=False, scale_attn_weights=True,
        bos_token_id=None, eos_token_id=None)
    hf = transformers.GPT2LMHeadModel(config)
    hf.config._attn_implementation = "eager"  # the only implementation that returns attention weights
    t = lambda name: torch.from_numpy(raw[name].copy())  # noqa: E731
    sd = {"transformer.wte.weight": t("embed.tok.weight"), "transformer.wpe.weight": t("embed.pos.weight"),
          "transformer.ln_f.weight": t("ln_f.weight"), "transformer.ln_f.bias": t("ln_f.bias"),
          "lm_head.weight": t("lm_head.weight")}
    for i in range(L):
        ours, theirs = f"blocks.{i}", f"transformer.h.{i}"
        for a, b in (("ln1", "ln_1"), ("ln2", "ln_2")):
            sd[f"{theirs}.{b}.weight"] = t(f"{ours}.{a}.weight")
            sd[f"{theirs}.{b}.bias"] = t(f"{ours}.{a}.bias")
        # GPT-2's Conv1D stores (in, out): the transpose of a Linear's (out, in).
        for a, b in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                     ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):
            sd[f"{theirs}.{b}.weight"] = t(f"{ours}.{a}.weight").T.contiguous()
            sd[f"{theirs}.{b}.bias"] = t(f"{ours}.{a}.bias")
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and not [m for m in missing if not m.endswith((".attn.bias", ".masked_bias"))]
    return hf.eval()


def _hf_run(hf, tokens):
    """Runs GPT-2 and collects every module boundary that has a counterpart in our trace."""
    got, hooks = {}, []

    def out_hook(name):
        return lambda mod, inp, out: got.__setitem__(name, out[0].detach())

    def in_hook(name):
        return lambda mod, inp: got.__setitem__(name, inp[0][0].detach())

    tr = hf.transformer
    hooks += [tr.wte.register_forward_hook(out_hook("embed.tok")),
              tr.wpe.register_forward_hook(lambda m, i, o: got.__setitem__("embed.pos", o.reshape(-1, C))),
              tr.ln_f.register_forward_pre_hook(in_hook(f"blocks.{L - 1}.resid2")),
              tr.ln_f.register_forward_hook(out_hook("ln_f.out"))]
    for i, blk in enumerate(tr.h):
        p = f"blocks.{i}"
        hooks += [blk.ln_1.register_forward_hook(out_hook(f"{p}.ln1.out")),
                  blk.attn.c_attn.register_forward_hook(out_hook(f"{p}.qkv")),
                  blk.attn.c_proj.register_forward_pre_hook(in_hook(f"{p}.heads")),
                  blk.attn.c_proj.register_forward_hook(out_hook(f"{p}.attn.proj")),
                  blk.ln_2.register_forward_pre_hook(in_hook(f"{p}.resid1")),
                  blk.ln_2.register_forward_hook(out_hook(f"{p}.ln2.out")),
                  blk.mlp.c_fc.register_forward_hook(out_hook(f"{p}.mlp.fc")),
                  blk.mlp.act.register_forward_hook(out_hook(f"{p}.mlp.gelu")),
                  blk.mlp.c_proj.register_forward_hook(out_hook(f"{p}.mlp.proj"))]
    try:
        with torch.inference_mode():
            out = hf(torch.tensor([tokens]), output_hidden_states=True, output_attentions=True)
    finally:
        for h in hooks:
            h.remove()
    return out, {k: v.numpy() for k, v in got.items()}


def test_trace_equals_transformers_gpt2(hf_model, traces):
    compared = set()
    for tokens, trace in zip(INPUTS, traces):
        out, got = _hf_run(hf_model, tokens)
        T = len(tokens)
        close(trace["logits"], out.logits[0].numpy(), "logits")
        close(trace["probs"], torch.softmax(out.logits[0], -1).numpy(), "probs")
        # hidden_states: the embedding, each block's output, and (last) the ln_f output.
        hs = out.hidden_states
        assert len(hs) == L + 1
        close(trace["embed.out"], hs[0][0].numpy(), "embed.out")
        for i in range(L - 1):
            close(trace[f"blocks.{i}.resid2"], hs[i + 1][0].numpy(), f"blocks.{i}.resid2")
        close(trace["ln_f.out"], hs[L][0].numpy(), "ln_f.out (hidden_states[-1])")
        for i in range(L):
            p = f"blocks.{i}"
            qkv = got.pop(f"{p}.qkv").reshape(T, 3, H, D)
            heads = got.pop(f"{p}.heads").reshape(T, H, D)
            for h in range(H):
                hp = f"{p}.attn.head.{h}"
                close(trace[f"{hp}.softmax"], out.attentions[i][0, h].numpy(), f"{hp}.softmax")
                close(trace[f"{hp}.out"], heads[:, h], f"{hp}.out")
                for j, name in enumerate("qkv"):
                    close(trace[f"{hp}.{name}"], qkv[:, j, h], f"{hp}.{name}")
                compared |= {f"{hp}.{n}" for n in ("softmax", "out", "q", "k", "v")}
        for tensor_id, value in got.items():
            close(trace[tensor_id], value, tensor_id)
        compared |= set(got) | {"logits", "probs", "embed.out", "ln_f.out"}
        compared |= {f"blocks.{i}.resid2" for i in range(L)}
    # Everything but what GPT-2 keeps internal (LN statistics, raw and masked scores).
    internal = {i for i, _ in activation_ids(L, H)
                if i.endswith((".mean", ".std", ".scores", ".scores_masked")) or i == "tokens"}
    assert compared == {i for i, _ in activation_ids(L, H)} - internal


# ---- against plain numpy, from the raw weights ------------------------------------------------

def _np_layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1)
    std = np.sqrt(((x - mean[:, None]) ** 2).mean(-1) + eps)
    return mean, std, (x - mean[:, None]) / std[:, None] * w + b


def _np_forward(raw, tokens):
    """A float64 GPT-2 forward written from the formulas, recording what the trace records."""
    w = {k: v.astype(np.float64) for k, v in raw.items()}
    T, rec = len(tokens), {}
    x = w["embed.tok.weight"][tokens] + w["embed.pos.weight"][:T]
    mask = np.triu(np.ones((T, T), bool), 1)
    for i in range(L):
        p = f"blocks.{i}"
        mean, std, h = _np_layer_norm(x, w[f"{p}.ln1.weight"], w[f"{p}.ln1.bias"])
        rec.update({f"{p}.ln1.mean": mean, f"{p}.ln1.std": std, f"{p}.ln1.out": h})
        qkv = h @ w[f"{p}.attn.qkv.weight"].T + w[f"{p}.attn.qkv.bias"]
        outs = []
        for hh in range(H):
            hp = f"{p}.attn.head.{hh}"
            q, k, v = (qkv[:, j * C + hh * D: j * C + (hh + 1) * D] for j in range(3))
            scores = q @ k.T / np.sqrt(D)
            masked = np.where(mask, -np.inf, scores)
            e = np.exp(masked - masked.max(-1, keepdims=True))
            att = e / e.sum(-1, keepdims=True)
            outs.append(att @ v)
            rec.update({f"{hp}.q": q, f"{hp}.k": k, f"{hp}.v": v, f"{hp}.scores": scores,
                        f"{hp}.scores_masked": masked, f"{hp}.softmax": att, f"{hp}.out": outs[-1]})
        x = x + np.concatenate(outs, -1) @ w[f"{p}.attn.proj.weight"].T + w[f"{p}.attn.proj.bias"]
        mean, std, h = _np_layer_norm(x, w[f"{p}.ln2.weight"], w[f"{p}.ln2.bias"])
        rec.update({f"{p}.resid1": x, f"{p}.ln2.mean": mean, f"{p}.ln2.std": std, f"{p}.ln2.out": h})
        fc = h @ w[f"{p}.mlp.fc.weight"].T + w[f"{p}.mlp.fc.bias"]
        gelu = 0.5 * fc * (1 + np.tanh(np.sqrt(2 / np.pi) * (fc + 0.044715 * fc ** 3)))
        x = x + gelu @ w[f"{p}.mlp.proj.weight"].T + w[f"{p}.mlp.proj.bias"]
        rec.update({f"{p}.mlp.fc": fc, f"{p}.mlp.gelu": gelu, f"{p}.resid2": x})
    mean, std, h = _np_layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    rec.update({"ln_f.mean": mean, "ln_f.std": std, "ln_f.out": h, "logits": h @ w["lm_head.weight"].T})
    return rec


def test_trace_equals_numpy_reference(raw, traces):
    for tokens, trace in zip(INPUTS, traces):
        ref = _np_forward(raw, tokens)
        for tensor_id, expected in ref.items():
            if tensor_id.endswith("scores_masked"):
                above = np.triu(np.ones(expected.shape, bool), 1)
                assert np.all(np.isneginf(trace[tensor_id][above])), tensor_id
                close(trace[tensor_id][~above], expected[~above], tensor_id)
            else:
                close(trace[tensor_id], expected, tensor_id)
        assert len(ref) > 90  # LN statistics, q/k/v, scores and the rest were all checked


def test_per_head_weights_reproduce_q_k_v(model, traces):
    weights = model.weights()
    for trace in traces:
        for i in range(L):
            x = trace[f"blocks.{i}.ln1.out"].astype(np.float64)
            for h in range(H):
                hp = f"blocks.{i}.attn.head.{h}"
                for name in "qkv":
                    close(trace[f"{hp}.{name}"], x @ weights[f"{hp}.w{name}"].T + weights[f"{hp}.b{name}"],
                          f"{hp}.w{name}")
