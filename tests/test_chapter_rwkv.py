"""Chapter 13 (RWKV: attention as a recurrence) on the live rwkv-tiny: it plays headless to the end, every step
renders from the live trace, and the arithmetic its steps print (the WKV average, the decayed denominator, ReLU²,
the residual additions) holds, checked against a numpy recomputation from the tokens and the weights alone."""
import re

import numpy as np
import pytest

pytest.importorskip("torch")

from scene_support import assert_chapter_is, live_scene, play_live_chapter, with_text  # noqa: E402


SIZE = (320, 180)
EPS = 1e-5  # rwkv-tiny's LayerNorm epsilon
PROJECTION = {"k": "key", "v": "value", "r": "receptance"}  # each mix μ_k, μ_v, μ_r feeds its matrix
# A number as format_number prints it (4 significant digits, a true minus sign, "3.1e−5"), possibly as a
# {term}, in parentheses when negative.
N = r"(\(?−?\d+(?:\.\d+)?(?:e−?\d+)?\)?)"


def number(text: str) -> float:
    return float(text.strip("()").replace("−", "-"))



def close(shown: float, exact: float, digits: float = 4) -> bool:
    """``shown`` is ``exact`` to the precision of a 4-significant-digit print (with float32 slack)."""
    return abs(shown - exact) <= 10.0 ** (1 - digits) * max(abs(exact), 1e-12) + 1e-7


@pytest.fixture(scope="module")
def rwkv():
    with live_scene("rwkv-tiny", SIZE) as opened:
        yield opened


def layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + EPS) * weight + bias


def shifted(h):
    """Token shift: row t holds row t − 1, the first row zeros (the state before any token)."""
    return np.vstack([np.zeros_like(h[:1]), h[:-1]])


def reference(tokens, weights) -> dict[str, np.ndarray]:
    """Block 0's time and channel mixing in float64 numpy from the weights, following arXiv:2305.13048
    (shared/reference/formulas.md): the WKV sums a, b unscaled, decayed by exp(−exp(w)) per step."""
    W = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    p, q = "blocks.0.time_mix", "blocks.0.channel_mix"
    x = layer_norm(W["embed.tok.weight"][np.asarray(tokens)], W["ln0.weight"], W["ln0.bias"])
    h = layer_norm(x, W["blocks.0.ln1.weight"], W["blocks.0.ln1.bias"])
    prev = shifted(h)

    def mixed(prefix, name, now, before):
        mu = W[f"{prefix}.mix_{name}"]
        matrix = W[f"{prefix}.{PROJECTION[name]}.weight"]
        return (mu * now + (1 - mu) * before) @ matrix.T

    k, v, r = (mixed(p, name, h, prev) for name in "kvr")
    keep, u = np.exp(-np.exp(W[f"{p}.decay"])), W[f"{p}.bonus"]
    a, b = np.zeros(h.shape[1]), np.zeros(h.shape[1])
    nums, dens, wkv = [], [], []
    for k_t, v_t in zip(k, v):
        wkv.append((a + np.exp(u + k_t) * v_t) / (b + np.exp(u + k_t)))
        a, b = keep * a + np.exp(k_t) * v_t, keep * b + np.exp(k_t)
        nums.append(a)
        dens.append(b)
    wkv = np.array(wkv)
    out = (1 / (1 + np.exp(-r)) * wkv) @ W[f"{p}.out.weight"].T
    resid1 = x + out
    h2 = layer_norm(resid1, W["blocks.0.ln2.weight"], W["blocks.0.ln2.bias"])
    ck, cr = mixed(q, "k", h2, shifted(h2)), mixed(q, "r", h2, shifted(h2))
    act = np.maximum(ck, 0) ** 2
    cv = act @ W[f"{q}.value.weight"].T
    cout = 1 / (1 + np.exp(-cr)) * cv
    return {"ln0.out": x, f"{p}.shift": prev, f"{p}.key": k, f"{p}.value": v, f"{p}.receptance": r,
            f"{p}.num": np.array(nums), f"{p}.den": np.array(dens), f"{p}.wkv": wkv, f"{p}.out": out,
            "blocks.0.resid1": resid1, f"{q}.key": ck, f"{q}.act": act, f"{q}.value": cv, f"{q}.receptance": cr,
            f"{q}.out": cout, "blocks.0.resid2": resid1 + cout}


def test_the_rwkv_chapter_is_chapter_13_on_rwkv_tiny():
    # the prose holds no digits but indices and the formulas' 0, 1
    assert_chapter_is(13, "rwkv-tiny", {"0", "1", "2", "5"})


def test_the_rwkv_chapter_plays_headless_on_the_live_trace(rwkv):
    scene, _ = rwkv
    runner, chapter = play_live_chapter(scene, SIZE, 13)
    for k in range(len(chapter.steps)):
        runner.go_to_step_end(k)
        text = runner.moment().text
        assert "{" not in text.text and "}" not in text.text and text.references
    runner.go_to_step_end(0)
    assert scene.live.text in runner.moment().text.text


def step_texts(scene) -> list[str]:
    from llmviz.scenes.chapters.apply import chapter_runner

    runner = chapter_runner(scene, SIZE)
    out = []
    for k in range(len(runner.chapters[0].steps)):
        runner.go_to_step_end(k)
        out.append(runner.moment().text.text)
    return out


def test_the_printed_arithmetic_holds_against_a_numpy_reference(rwkv):
    check_the_printed_arithmetic(rwkv[0])


def check_the_printed_arithmetic(scene):
    live = scene.live
    ref = reference(live.tokens, dict(live.weights))
    for name, exact in ref.items():  # the live trace is the model the reference describes
        assert np.allclose(live.trace[name], exact, rtol=1e-4, atol=1e-4), name
    texts = step_texts(scene)
    W = {k: np.asarray(v, np.float64) for k, v in live.weights.items()}
    p, q = "blocks.0.time_mix", "blocks.0.channel_mix"

    # The WKV step: wkv = (a + exp(u + k)·v) / (b + exp(u + k)) at character 5, channel 2.
    (wkv_text,) = [t for t in texts if "wkvₜ =" in t]
    m = re.search(rf"wkv = \({N} \+ exp\({N} \+ {N}\)·{N}\) / \({N} \+ exp\({N} \+ {N}\)\) = {N}", wkv_text)
    assert m, wkv_text
    a, u, k, v, b, u2, k2, wkv = (number(g) for g in m.groups())
    assert (u, k) == (u2, k2)
    for shown, exact in ((a, ref[f"{p}.num"][4, 2]), (b, ref[f"{p}.den"][4, 2]), (u, W[f"{p}.bonus"][2]),
                         (k, ref[f"{p}.key"][5, 2]), (v, ref[f"{p}.value"][5, 2]), (wkv, ref[f"{p}.wkv"][5, 2])):
        assert close(shown, exact), (shown, exact)
    weight = np.exp(u + k)
    assert close(wkv, (a + weight * v) / (b + weight), digits=3)   # from the printed numbers alone
    assert f"a = {m.group(1)} and b = {m.group(5)}" in wkv_text

    # The decay step: bₜ = bₜ₋₁·exp(−exp(w)) + exp(kₜ), channel 0, after character 5.
    (decay_text,) = [t for t in texts if "forgets" in t and "exp(−exp(" in t]
    m = re.search(rf"b was {N} after .* it is {N}·exp\(−exp\({N}\)\) \+ exp\({N}\) = {N}", decay_text)
    assert m and m.group(1) == m.group(2), decay_text
    _, b3, w, k4, b4 = (number(g) for g in m.groups())
    for shown, exact in ((b3, ref[f"{p}.den"][4, 0]), (w, W[f"{p}.decay"][0]), (k4, ref[f"{p}.key"][5, 0]),
                         (b4, ref[f"{p}.den"][5, 0])):
        assert close(shown, exact), (shown, exact)
    assert close(b4, b3 * np.exp(-np.exp(w)) + np.exp(k4), digits=3)

    # The gate and the residual: x + time-mix out = resid1; ReLU²; σ(r)·value; resid1 + out = resid2.
    (gate_text,) = [t for t in texts if "W_o" in t]
    m = re.search(rf"channel 0, {N} \+ {N} = {N}", gate_text)
    assert m, gate_text
    x, out, resid1 = (number(g) for g in m.groups())
    assert close(resid1, x + out, digits=3) and close(resid1, ref["blocks.0.resid1"][5, 0])
    (mlp_text,) = [t for t in texts if "ReLU²" in t]
    pairs = re.findall(rf"{N} becomes {N}", mlp_text)
    assert len(pairs) == 2
    for key, act in ((number(x), number(y)) for x, y in pairs):
        assert close(act, max(key, 0.0) ** 2, digits=3) if key > 0 else act == 0
    m = re.search(rf"σ\({N}\)·{N} = {N}, added to the stream to give {N}", mlp_text)
    assert m, mlp_text
    r, value, out, resid2 = (number(g) for g in m.groups())
    assert close(out, value / (1 + np.exp(-r)), digits=3) and close(out, ref[f"{q}.out"][5, 0])
    assert close(resid2, resid1 + out, digits=3) and close(resid2, ref["blocks.0.resid2"][5, 0])

    # The hidden attention: the last character's weights on itself and on the one before, each channel's
    # exp(u + k_t) and exp(k_(t−1)) over the sum of all its weights (brute force), averaged over the channels.
    (attention_text,) = [t for t in texts if "hidden attention" in t.lower() and "puts" in t]
    m = re.search(rf"puts {N} on itself and {N} on the one before", attention_text)
    assert m, attention_text
    key, u, w = ref[f"{p}.key"].astype(np.float64), W[f"{p}.bonus"], np.exp(W[f"{p}.decay"])
    T = key.shape[0]
    weights = np.stack([np.exp(key[i] - (T - 2 - i) * w) for i in range(T - 1)] + [np.exp(u + key[-1])])
    share = weights / weights.sum(axis=0)                       # (T, channels): the last row, per channel
    assert close(number(m.group(1)), share[-1].mean()) and close(number(m.group(2)), share[-2].mean())


def test_the_numbers_follow_the_input(rwkv):
    scene, _ = rwkv
    before = step_texts(scene)
    with with_text(scene, "a river of words, one by one"):
        after = step_texts(scene)
        check_the_printed_arithmetic(scene)
    assert sum(a != b for a, b in zip(before, after)) >= 6
    assert step_texts(scene) == before
