"""Chapter 14 (Hybrid: attention, Mamba and experts in one stack) on the live jamba-tiny: it plays headless to the
end, every step renders from the live trace, and the arithmetic its steps print (the scan step, the causal
attention weights, the cache's and the state's shapes, the router's softmax, gates that do not sum to 1, the
load and its spread, the residual stream's sum over all eight parts) holds, checked against a numpy
recomputation of the whole model from the tokens and the weights alone."""
import math
import re

import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import assert_chapter_is, live_scene, play_live_chapter, with_text  # noqa: E402


SIZE = (320, 180)
EPS = 1e-6           # jamba-tiny's RMSNorm epsilon (its spec's notes), inner norms included
MAMBA, ATTENTION, MOE = (0, 1, 3), 2, (1, 3)
HEADS, KV_HEADS, TOP_K = 4, 2, 2
# A number as format_number prints it (4 significant digits, a true minus sign, "3.1e−5"), possibly as a
# {term}, in parentheses when negative.
N = r"(\(?−?\d+(?:\.\d+)?(?:e−?\d+)?\)?)"
V = r"\[([^\]]*)\]"  # a {vector}


def number(text: str) -> float:
    return float(text.strip("()").replace("−", "-"))


def vector(text: str) -> list[float]:
    return [number(t) for t in text.split(", ")]


def ulp(x: float) -> float:
    """Half a unit in the last of the 4 significant digits format_number prints: how far the shown number
    can be from the one computed (0 for a printed 0, which format_number writes only for 0 itself)."""
    return 0.0 if x == 0 else 0.5 * 10.0 ** (math.floor(math.log10(abs(x))) - 3)


def close(shown: float, exact: float) -> bool:
    """``shown`` is ``exact`` printed to 4 significant digits (with float32 slack)."""
    return abs(shown - exact) <= ulp(shown) * 1.001 + 1e-6 * abs(exact) + 1e-9



@pytest.fixture(scope="module")
def jamba():
    with live_scene("jamba-tiny", SIZE) as opened:
        yield opened


# ---- the reference: jamba-tiny in float64 numpy ----------------------------------------------------------

def rms_norm(x, weight):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * weight


def silu(x):
    return x / (1 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def swiglu(x, w_gate, w_up, w_down):
    return (silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def mamba(u, W, p, out):
    """Jamba's Mamba mixer (transformers' JambaMambaMixer, shared/reference/formulas.md): x, z; a causal
    depthwise conv and SiLU; Δ-low, B, C from x_proj, each through an RMSNorm; Δ = softplus(W_dt·Δ-low + b);
    h_t = exp(Δ_t A)·h_{t−1} + Δ_t B_t x_t; y = C_t·h_t + D x_t; y·SiLU(z), W_out."""
    x, z = u @ W[f"{p}.x.weight"].T, u @ W[f"{p}.z.weight"].T
    kernel = W[f"{p}.conv.weight"]                                    # (d_inner, K), oldest tap first
    K = kernel.shape[1]
    padded = np.vstack([np.zeros((K - 1, x.shape[1])), x])
    conv = sum(kernel[:, w] * padded[w:w + len(x)] for w in range(K)) + W[f"{p}.conv.bias"]
    xc = silu(conv)
    r, n = W[f"{p}.dt_low.weight"].shape[0], W[f"{p}.B.weight"].shape[0]
    gamma = W[f"{p}.inner_norms"]
    dt_low = rms_norm(xc @ W[f"{p}.dt_low.weight"].T, gamma[:r])
    B = rms_norm(xc @ W[f"{p}.B.weight"].T, gamma[r:r + n])
    C = rms_norm(xc @ W[f"{p}.C.weight"].T, gamma[r + n:])
    dt = np.logaddexp(0, dt_low @ W[f"{p}.dt.weight"].T + W[f"{p}.dt.bias"])
    A = -np.exp(W[f"{p}.A_log"])
    h = np.zeros_like(A)
    for t in range(len(x)):
        dA = np.exp(dt[t][:, None] * A)
        dBx = dt[t][:, None] * B[t][None, :] * xc[t][:, None]
        h = dA * h + dBx
        out[f"{p}.dA.{t}"], out[f"{p}.dBx.{t}"], out[f"{p}.h.{t}"] = dA, dBx, h
    y = np.stack([out[f"{p}.h.{t}"] @ C[t] for t in range(len(x))]) + W[f"{p}.D"] * xc
    out[f"{p}.out"] = (y * silu(z)) @ W[f"{p}.out.weight"].T
    return out[f"{p}.out"]


def attention(u, W, p, out):
    """Grouped-query causal attention without positional encoding: head h reads KV head h // (heads / kv)."""
    T = len(u)
    for g in range(KV_HEADS):
        out[f"{p}.kv_head.{g}.k"] = u @ W[f"{p}.kv_head.{g}.wk"].T
        out[f"{p}.kv_head.{g}.v"] = u @ W[f"{p}.kv_head.{g}.wv"].T
    heads = []
    for h in range(HEADS):
        g = h // (HEADS // KV_HEADS)
        q, k, v = u @ W[f"{p}.head.{h}.wq"].T, out[f"{p}.kv_head.{g}.k"], out[f"{p}.kv_head.{g}.v"]
        scores = q @ k.T / np.sqrt(q.shape[1])
        scores[np.triu(np.ones((T, T), bool), k=1)] = -np.inf
        out[f"{p}.head.{h}.softmax"] = softmax(scores)
        heads.append(out[f"{p}.head.{h}.softmax"] @ v)
    out[f"{p}.proj"] = np.hstack(heads) @ W[f"{p}.proj.weight"].T
    return out[f"{p}.proj"]


def moe(u, W, p, out):
    """Jamba's MoE: a softmax over the experts, the top-2 kept with their probabilities as gates (not
    renormalised), y = Σ gate · SwiGLU_e(u)."""
    logits = u @ W[f"{p}.router.weight"].T
    probs = softmax(logits)
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :TOP_K]
    gates = np.zeros_like(probs)
    np.put_along_axis(gates, topk, np.take_along_axis(probs, topk, 1), axis=1)
    y = sum(gates[:, e:e + 1] * swiglu(u, W[f"{p}.expert.{e}"], W[f"{p}.expert.{e}.up.weight"],
                                       W[f"{p}.expert.{e}.down.weight"]) for e in range(probs.shape[1]))
    out.update({f"{p}.router": logits, f"{p}.probs": probs, f"{p}.topk": topk, f"{p}.gates": gates, f"{p}.out": y})
    return y


def reference(tokens, weights) -> dict[str, np.ndarray]:
    W = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    out = {"embed.out": W["embed.tok.weight"][np.asarray(tokens)]}
    x = out["embed.out"]
    for i in range(4):
        p = f"blocks.{i}"
        h = rms_norm(x, W[f"{p}.ln1.weight"])
        x = x + (attention(h, W, f"{p}.attn", out) if i == ATTENTION else mamba(h, W, f"{p}.mamba", out))
        out[f"{p}.resid1"] = x
        h = rms_norm(x, W[f"{p}.ln2.weight"])
        if i in MOE:
            x = x + moe(h, W, f"{p}.moe", out)
        else:
            m = f"{p}.mlp"
            out[f"{m}.down"] = swiglu(h, W[f"{m}.gate.weight"], W[f"{m}.up.weight"], W[f"{m}.down.weight"])
            x = x + out[f"{m}.down"]
        out[f"{p}.resid2"] = x
    out["probs"] = softmax(rms_norm(x, W["ln_f.weight"]) @ W["lm_head.weight"].T)
    return out


def routing_stats(ref, layer: int) -> dict[str, np.ndarray]:
    """Tokens per expert, mean gate, coefficient of variation of the load, and transformers' Jamba/Mixtral
    balancing loss E · Σ_e (assignments to e / T) · (mean probability of e)."""
    p = f"blocks.{layer}.moe"
    probs, topk = ref[f"{p}.probs"], ref[f"{p}.topk"]
    T, E = probs.shape
    load = np.bincount(topk.ravel(), minlength=E).astype(float)
    return {"load": load, "mean_gate": ref[f"{p}.gates"].mean(axis=0), "cv": load.std() / load.mean(),
            "aux_loss": E * np.sum(load / T * probs.mean(axis=0))}


# ---- the tests ---------------------------------------------------------------------------------------------

def test_the_hybrid_chapter_is_chapter_14_on_jamba_tiny():
    # the prose holds no digits but indices (layers, heads, experts, characters, the chapters it points to) and
    # the formulas' 1; "AI21" is a name
    assert_chapter_is(14, "jamba-tiny", {"0", "1", "2", "3", "5", "6", "11", "12"}, names_pattern="AI21")


def test_the_hybrid_chapter_plays_headless_on_the_live_trace(jamba):
    scene, _ = jamba
    runner, chapter = play_live_chapter(scene, SIZE, 14)
    for k in range(len(chapter.steps)):
        runner.go_to_step_end(k)
        text = runner.moment().text
        assert "{" not in text.text and "}" not in text.text and text.references
    runner.go_to_step_end(0)
    assert scene.live.text in runner.moment().text.text


def step_texts(scene) -> dict[str, str]:
    """Each step's rendered text, by step title."""
    from llmviz.scenes.chapters.apply import chapter_runner

    runner = chapter_runner(scene, SIZE)
    out = {}
    for k, step in enumerate(runner.chapters[0].steps):
        runner.go_to_step_end(k)
        out[step.title] = runner.moment().text.text
    return out


def test_the_printed_arithmetic_holds_against_a_numpy_reference(jamba):
    check_the_printed_arithmetic(jamba[0])


def check_the_printed_arithmetic(scene):
    from llmviz.models.sim import moe_corpus

    live = scene.live
    T = len(live.tokens)
    ref = reference(live.tokens, dict(live.weights))
    for name, exact in ref.items():  # the live trace is the model the reference describes
        if name.endswith(".topk"):
            assert np.array_equal(live.trace[name], exact), name
        elif not name.startswith("blocks.2.attn.head."):
            assert np.allclose(live.trace[name], exact, rtol=1e-4, atol=1e-4), name
    for h in range(HEADS):
        assert np.allclose(live.trace[f"blocks.2.attn.head.{h}.softmax"], ref[f"blocks.2.attn.head.{h}.softmax"],
                           atol=1e-5)
    for layer in MOE:  # the runner's routing values are these statistics
        want, got = routing_stats(ref, layer), live.stats
        k = list(got.layers).index(layer)
        assert np.array_equal(got.load[k], want["load"]) and np.allclose(got.mean_gate[k], want["mean_gate"], atol=1e-5)
        assert np.isclose(got.cv[k], want["cv"], atol=1e-5) and np.isclose(got.aux_loss[k], want["aux_loss"], atol=1e-4)
    texts = step_texts(scene)

    # Three kinds of layer: the input and the spec's counts.
    first = texts["Three kinds of layer in one stack"]
    assert f'reads "{live.text}" with 4 layers' in first and "one in 4" in first

    # The scan: exp(ΔA)·h₂ + ΔB·x = h₃ at layer 0, channel 0, state 0.
    scan = texts["The Mamba layers: a state of fixed size"]
    m = re.search(rf"holds {N}; character 3 keeps exp\(ΔA\) = {N} of it and adds ΔB·x = {N}: "
                  rf"{N}·{N} \+ {N} = {N}, the state after character 3", scan)
    assert m, scan
    h2, dA, dBx, dA2, h2b, dBx2, h3 = (number(g) for g in m.groups())
    assert (dA, h2, dBx) == (dA2, h2b, dBx2)
    p = "blocks.0.mamba"
    for shown, exact in ((h2, ref[f"{p}.h.2"][0, 0]), (dA, ref[f"{p}.dA.3"][0, 0]), (dBx, ref[f"{p}.dBx.3"][0, 0]),
                         (h3, ref[f"{p}.h.3"][0, 0])):
        assert close(shown, exact), (shown, exact)
    bound = abs(h2) * ulp(dA) + abs(dA) * ulp(h2) + ulp(dBx) + ulp(h3)
    assert abs(dA * h2 + dBx - h3) <= bound + 1e-9  # from the printed numbers alone

    # Attention: character 5's causal weights over characters 0 to 5 sum to 1, character 6 gets 0; heads 0
    # and 1 share KV head 0 (the reference gives both its keys) yet weigh them otherwise.
    att = texts["The attention layer: heads that share keys and values"]
    m = re.search(rf"over characters 0 to 5 are {V}, which add up to {N}; character 6, still to come, gets {N}\. "
                  rf"Head 1 reads the same keys with its own query and weighs them otherwise: {V}\.", att)
    assert m, att
    w0, total, future, w1 = vector(m.group(1)), number(m.group(2)), number(m.group(3)), vector(m.group(4))
    assert len(w0) == len(w1) == 6 and total == 1 and future == 0
    assert abs(sum(w0) - total) <= sum(ulp(w) for w in w0) + ulp(total)
    for h, shown in ((0, w0), (1, w1)):
        assert all(close(s, e) for s, e in zip(shown, ref[f"blocks.2.attn.head.{h}.softmax"][5, :6])), (h, shown)
    assert w0 != w1 and ref["blocks.2.attn.head.0.softmax"][5, 6:].max() == 0

    # The cache: four tables of T×16 after the input; the state 128×16 plus the conv's 128×4, per Mamba layer.
    cache = texts["A cache that grows, a state that does not"]
    m = re.search(r"of (\d+)×(\d+) each, one row per character.*only the last one, (\d+)×(\d+) numbers, .*"
                  r"one per tap of its filters \((\d+)×(\d+)\): the same after (\d+) characters", cache, re.S)
    assert m, cache
    rows, width, inner, d_state, inner2, taps, n = (int(g) for g in m.groups())
    spec = live.spec.architecture
    assert rows == n == T and width == spec.head_width and "4 query heads, two key/value pairs" in cache
    assert KV_HEADS * 2 * rows * width == sum(np.size(ref[f"blocks.2.attn.kv_head.{g}.{kv}"])
                                              for g in range(KV_HEADS) for kv in "kv")
    assert (inner, d_state) == np.shape(ref["blocks.0.mamba.h.0"]) and inner2 == inner and taps == spec.ssm.d_conv
    from llmviz.scenes.hybrid_live import cache_bytes  # the sizes the scene's panel states, in float32 bytes

    assert cache_bytes(live.spec, T) == (4 * KV_HEADS * 2 * rows * width, 4 * len(MAMBA) * inner * (d_state + taps))
    assert cache_bytes(live.spec, T + 1)[0] - cache_bytes(live.spec, T)[0] == 4 * KV_HEADS * 2 * width

    # The router: softmax of the printed logits gives the printed probabilities; the top 2 of them run.
    router = texts["The router: a softmax over the experts"]
    m = re.search(rf"the logits {V} become, .* the probabilities {V}\. Only the 2 most probable experts run: "
                  rf"here experts {V}\.", router, re.S)
    assert m, router
    logits, probs, chosen = (np.array(vector(g)) for g in m.groups())
    assert np.allclose(softmax(logits), probs, atol=1e-3, rtol=0)
    assert all(close(s, e) for s, e in zip(logits, ref["blocks.1.moe.router"][0]))
    assert all(close(s, e) for s, e in zip(probs, ref["blocks.1.moe.probs"][0]))
    assert list(chosen) == list(np.argsort(-probs, kind="stable")[:2]) == list(ref["blocks.1.moe.topk"][0])

    # The gates: the chosen probabilities themselves, their sum below 1; the MoE output added to the stream.
    gates_text = texts["Gates that do not sum to 1"]
    m = re.search(rf"character 0's gates are {V}, and its two gates add up to {N}, not 1\.", gates_text)
    assert m, gates_text
    gates, gate_sum = np.array(vector(m.group(1))), number(m.group(2))
    assert np.count_nonzero(gates) == 2 and list(np.flatnonzero(gates)) == sorted(chosen)
    assert np.array_equal(gates[chosen.astype(int)], probs[chosen.astype(int)])  # the very numbers the router step shows
    assert abs(gates.sum() - gate_sum) <= sum(ulp(g) for g in gates) + ulp(gate_sum) and gate_sum < 1
    assert close(gate_sum, ref["blocks.1.moe.gates"][0].sum())
    m = re.search(rf"add up to {N} on average in layer 1 and {N} in layer 3\.", gates_text)
    assert m, gates_text
    for shown, layer in zip((number(g) for g in m.groups()), MOE):  # the mean over characters of the two gates
        assert close(shown, ref[f"blocks.{layer}.moe.gates"].sum(axis=1).mean()) and shown < 1
    m = re.search(rf"channel 0, {N} \+ {N} = {N}\.", gates_text)
    assert m, gates_text
    resid1, out, resid2 = (number(g) for g in m.groups())
    assert abs(resid1 + out - resid2) <= ulp(resid1) + ulp(out) + ulp(resid2)
    for shown, exact in ((resid1, ref["blocks.1.resid1"][0, 0]), (out, ref["blocks.1.moe.out"][0, 0]),
                         (resid2, ref["blocks.1.resid2"][0, 0])):
        assert close(shown, exact), (shown, exact)

    # The load: top-2 × T assignments, split as printed; cv = std / mean of the printed load; the loss.
    load_text = texts["Load balance in each MoE layer"]
    m = re.search(rf"so layer 1 hands out {N} for these (\d+) characters: {V} to experts 0 to 3\. .* router: {V}, "
                  rf"the cells", load_text, re.S)
    assert m, load_text
    handed, n, load1, load3 = number(m.group(1)), int(m.group(2)), np.array(vector(m.group(3))), np.array(vector(m.group(4)))
    assert n == T and handed == TOP_K * T == load1.sum() == load3.sum()
    m = re.search(rf"cv = {N} in layer 1 and {N} in layer 3 .* On this text it is {N} in layer 1, {N} in layer 3\.",
                  load_text, re.S)
    assert m, load_text
    cv1, cv3, aux1, aux3 = (number(g) for g in m.groups())
    for layer, load, cv, aux in ((1, load1, cv1, aux1), (3, load3, cv3, aux3)):
        want = routing_stats(ref, layer)
        assert np.array_equal(load, want["load"])
        assert close(cv, load.std() / load.mean())  # from the printed load alone
        assert close(aux, want["aux_loss"]) and aux >= TOP_K - 1e-3
    even = np.full(4, TOP_K * T / 4)  # "2 when the load is perfectly even": uniform probabilities and load
    assert np.isclose(4 * np.sum(even / T * np.full(4, 0.25)), TOP_K)

    # The path: character 5's experts, attention and guess; the stream is the sum of all that was added.
    path = texts["One character's path through the stack"]
    m = re.search(rf"sends it to experts {V}; .* head 0 most at character (\d+); .* sends it to experts {V}\. "
                  rf'.* the next character, "(.)" with probability {N}\.', path, re.S)
    assert m, path
    e1, e3 = vector(m.group(1)), vector(m.group(3))
    assert e1 == list(ref["blocks.1.moe.topk"][5]) and e3 == list(ref["blocks.3.moe.topk"][5])
    assert int(m.group(2)) == int(np.argmax(ref["blocks.2.attn.head.0.softmax"][5])) <= 5
    assert m.group(4) == moe_corpus.ALPHABET[int(np.argmax(ref["probs"][5]))]
    assert close(number(m.group(5)), ref["probs"][5].max())
    m = re.search(rf"at channel 0, {N} from the embedding, then {N} \+ {N} \+ {N} \+ {N} \+ {N} \+ {N} \+ {N} \+ {N} "
                  rf"= {N}\.", path)
    assert m, path
    *terms, total = (number(g) for g in m.groups())
    parts = ["embed.out", "blocks.0.mamba.out", "blocks.0.mlp.down", "blocks.1.mamba.out", "blocks.1.moe.out",
             "blocks.2.attn.proj", "blocks.2.mlp.down", "blocks.3.mamba.out", "blocks.3.moe.out"]
    for shown, name in zip(terms, parts):
        assert close(shown, ref[name][5, 0]), (name, shown)
    assert close(total, ref["blocks.3.resid2"][5, 0])
    assert abs(sum(terms) - total) <= sum(ulp(t) for t in terms) + ulp(total)


def test_the_numbers_follow_the_input(jamba):
    scene, _ = jamba
    before = step_texts(scene)
    with with_text(scene, "a river of words, one by one"):
        after = step_texts(scene)
        check_the_printed_arithmetic(scene)
    assert sum(before[k] != after[k] for k in before) >= 7
    assert step_texts(scene) == before
