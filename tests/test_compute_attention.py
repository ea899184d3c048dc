"""The WGSL attention kernels against torch in float32 (1e-5 absolute + relative), on random shapes with odd sizes:
the full kernel (probabilities and output) and the tiled online-softmax kernel (output, row max, row sum)."""
import math

import numpy as np
import pytest
import torch

from llmviz.engine.compute import attention as compute

ATOL = RTOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def kernels():
    problem = compute.compute_unavailable()
    if problem:
        pytest.skip(f"no wgpu device for the compute kernels: {problem}")


def random_head(seed, heads, queries, keys, d):
    gen = np.random.default_rng(seed)
    q, k, v = (gen.standard_normal((heads, n, d)).astype(np.float32) * 1.5 for n in (queries, keys, keys))
    return q, k, v


def torch_reference(q, k, v, causal=True, window=None, scale=None):
    """Scores, probabilities and output by torch (float32), masks written out as the module states them."""
    q, k, v = (torch.from_numpy(a) for a in (q, k, v))
    tq, tk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    s = (q @ k.transpose(-1, -2)) * (d ** -0.5 if scale is None else scale)
    if causal:
        i = torch.arange(tq)[:, None] + (tk - tq)
        j = torch.arange(tk)[None, :]
        allowed = j <= i
        if window:
            allowed &= j > i - window
        s = s.masked_fill(~allowed, -math.inf)
    p = torch.softmax(s, dim=-1)
    return s, p, p @ v


def assert_close(actual, expected):
    torch.testing.assert_close(torch.from_numpy(np.asarray(actual)), expected, atol=ATOL, rtol=RTOL)


SHAPES = [  # heads, queries, keys, head dim: odd sizes on every axis, tiles cut mid-way, a cache (queries < keys)
    (1, 1, 1, 1), (1, 7, 7, 5), (3, 37, 37, 24), (2, 5, 33, 17), (2, 65, 65, 64), (1, 129, 200, 31), (4, 97, 97, 128),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_full_kernel_equals_torch(shape):
    q, k, v = random_head(sum(shape), *shape)
    _, p, out = torch_reference(q, k, v)
    got = compute.head_attention(q, k, v)
    assert_close(got.probs, p)
    assert_close(got.output, out)
    assert (got.probs[(p == 0).numpy()] == 0).all()  # masked keys get exactly nothing


@pytest.mark.parametrize("shape", SHAPES)
def test_online_kernel_equals_torch(shape):
    q, k, v = random_head(sum(shape) + 1, *shape)
    s, _, out = torch_reference(q, k, v)
    got_out, row_max, row_sum = compute.online_attention(q, k, v)
    assert_close(got_out, out)
    row_max_ref = s.amax(-1)
    assert_close(row_max, row_max_ref)
    assert_close(row_sum, torch.exp(s - row_max_ref[..., None]).sum(-1))


def test_sliding_window_unmasked_and_one_head_forms():
    q, k, v = random_head(5, 2, 150, 150, 16)
    for window in (1, 17, 64):
        _, p, out = torch_reference(q, k, v, window=window)
        assert_close(compute.head_attention(q, k, v, window=window).probs, p)
        assert_close(compute.online_attention(q, k, v, window=window)[0], out)
    _, p, out = torch_reference(q, k, v, causal=False, scale=0.3)
    assert_close(compute.head_attention(q, k, v, causal=False, scale=0.3).output, out)
    assert_close(compute.online_attention(q, k, v, causal=False, scale=0.3)[0], out)
    one = compute.head_attention(q[1], k[1], v[1])  # (T, d) in, (T, d) and (T, T) out
    assert one.output.shape == (150, 16) and one.probs.shape == (150, 150)
    assert_close(one.probs, torch_reference(q[1:], k[1:], v[1:])[1][0])


def test_online_kernel_in_several_submits_reports_progress(monkeypatch):
    monkeypatch.setattr(compute, "_CHUNK_MULTIPLY_ADDS", 64 * 300 * 8)  # 64 query rows a submit
    q, k, v = random_head(9, 1, 300, 300, 8)
    calls = []
    out, _, _ = compute.online_attention(q, k, v, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert_close(out, torch_reference(q, k, v)[2])


@pytest.mark.parametrize("args, words", [
    ((np.zeros((3, 4)), np.zeros((3, 5)), np.zeros((3, 5))), "do not fit"),
    ((np.zeros((4,)), np.zeros((3, 4)), np.zeros((3, 4))), "must be (T, d)"),
    ((np.zeros((5, 4)), np.zeros((3, 4)), np.zeros((3, 4))), "at least as many keys"),
    ((np.full((3, 4), np.nan), np.zeros((3, 4)), np.zeros((3, 4))), "NaN or infinite"),
    ((np.array([["a"]]), np.zeros((1, 1)), np.zeros((1, 1))), "must hold numbers"),
])
def test_bad_arrays_are_one_line_errors(args, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        compute.head_attention(*args)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="head dimension 129 is over 128"):
        compute.online_attention(np.zeros((2, 129)), np.zeros((2, 129)), np.zeros((2, 129)))
    with pytest.raises(ValueError, match="window must be a positive integer"):
        compute.online_attention(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4)), window=0)


def test_online_kernel_keeps_the_long_context_tiles_contract():
    # the same (output, row max, row sum) as the long-context pass's own tiled torch loop, on induction-2l's two
    # layer kinds: layer 0's sliding window and layer 1's full causal attention (tiles cut mid-way: 700 = 10 x 64 + 60)
    from llmviz.models.sim import long_attention
    from llmviz.models.sim.induction_model import InductionTinyConfig

    cfg = InductionTinyConfig()
    q, k, v = random_head(11, 2, 700, 700, 16)
    for layer in (0, 1):
        window = cfg.window if cfg.layer_types[layer] == "sliding_attention" else None
        expected = long_attention.tiled_attention(cfg, layer, *(torch.from_numpy(a) for a in (q, k, v)), tile=64)
        got = compute.online_attention(q, k, v, window=window)
        for actual, wanted in zip(got, expected):
            assert_close(actual, wanted)


def test_kernels_run_from_a_worker_thread_and_wgpu_errors_are_one_line(monkeypatch):
    import threading

    import wgpu

    q, k, v = random_head(13, 2, 40, 40, 8)
    results = {}
    worker = threading.Thread(target=lambda: results.update(done=compute.head_attention(q, k, v)))
    worker.start()
    worker.join(timeout=120)
    assert_close(results["done"].output, torch_reference(q, k, v)[2])

    kernels = compute._kernels()

    def out_of_memory(*args):
        raise wgpu.GPUOutOfMemoryError("Not enough memory left\n(second line)")

    monkeypatch.setattr(kernels, "online", out_of_memory)
    with pytest.raises(compute.ComputeUnavailable, match="online_attention failed on .*: Not enough memory") as err:
        compute.online_attention(q, k, v)
    assert "\n" not in str(err.value)


def test_a_probability_matrix_past_the_storage_limit_is_refused_in_one_line():
    kernels = compute._kernels()
    side = int((kernels.max_binding // 4) ** 0.5) + 1  # one head's probabilities just past the limit
    q = np.zeros((side, 4), np.float32)
    with pytest.raises(ValueError, match=r"probability matrix \(\d+ MiB\) is over the adapter's storage limit"):
        compute.head_attention(q, q, q)


def test_online_kernel_on_two_thousand_queries():
    # lavapipe once gave wrong rows past ~1,700 of 2,048 queries here (the kernel's arrays in scratch memory)
    q, k, v = random_head(17, 1, 2048, 2048, 64)
    assert_close(compute.online_attention(q, k, v)[0], torch_reference(q, k, v)[2])


def test_bench_compute_prints_each_shapes_times_and_its_difference_from_torch(monkeypatch, capsys):
    import json

    from llmviz.scenes.cli import compute_bench
    from llmviz.scenes.cli.main import main

    table = compute_bench.table_shapes()
    assert {(t, d) for _, t, d in table["full"]} == {(t, d) for t in (64, 256, 1024, 4096) for d in (16, 32, 64, 128)}
    monkeypatch.setattr(compute_bench, "table_shapes", lambda: {"full": [(1, 37, 12)], "online": [(1, 37, 12)]})
    monkeypatch.setattr(compute_bench, "REPEATS", 1)
    assert main(["bench", "--compute", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["tokens"], r["head_dim"]) for r in report["results"]] == [("full", 37, 12), ("online", 37, 12)]
    for row in report["results"]:
        assert row["output_max_abs_difference"] <= 1e-5 and row["wgpu_ms"] > 0 and row["torch_ms"] > 0
    assert report["adapter"] == compute.adapter_label()
