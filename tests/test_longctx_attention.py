"""Tiled attention's summaries and zoomed blocks against brute force over the full matrix (4,096 tokens):
every level of the pyramid equals the same statistic computed directly from the whole T x T matrix, and
any block recomputed on demand equals the matrix's entries to 1e-6. The full matrix is a plain float64
softmax of the pass's queries and keys (which test_induction_model holds to transformers' own attention
weights), so what is tested here is the tiling, the online softmax and the pyramid; plus `llmviz longctx`."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.models.sim import induction_model, induction_task, long_attention  # noqa: E402

torch.set_num_threads(1)
LENGTH = 4096


@pytest.fixture(scope="module")
def long_pass():
    weights = long_attention.ModelWeights.from_model(induction_model.load_weights())
    tokens, _ = induction_task.long_sequence(LENGTH)
    return long_attention.run(weights, tokens, heads=[1], tile=512)


@pytest.fixture(scope="module")
def full(long_pass):
    """Head 1's whole matrix, brute force: softmax over each row's causal prefix, in float64."""
    q = long_pass.queries[1].double().numpy()
    k = long_pass.keys[1].double().numpy()
    s = q @ k.T / np.sqrt(q.shape[1])
    s[np.triu_indices(LENGTH, 1)] = -np.inf
    p = np.exp(s - s.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def brute_level(full: np.ndarray, cell: int):
    g = -(-LENGTH // cell)
    padded = np.zeros((g * cell, g * cell))
    padded[:LENGTH, :LENGTH] = full
    cells = padded.reshape(g, cell, g, cell).transpose(0, 2, 1, 3).reshape(g, g, cell * cell)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(cells > 0, cells * np.log(cells), 0.0)
    top = -np.sort(-cells, axis=-1)[..., :long_attention.TOP_K]
    return cells.max(-1), cells.sum(-1), -plogp.sum(-1), top


def test_every_level_equals_brute_force_from_the_full_matrix(long_pass, full):
    levels = long_pass.levels[1]
    assert [lv.cell for lv in levels] == [8 << i for i in range(len(levels))]
    assert levels[-1].max.shape == (1, 1)
    for level in levels:
        mx, mass, entropy, top = brute_level(full, level.cell)
        np.testing.assert_allclose(level.max, mx, atol=1e-6)
        np.testing.assert_allclose(level.mass, mass, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(level.mean, mass / level.cell ** 2, atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(level.entropy, entropy, atol=1e-4, rtol=1e-5)
        kept = min(long_attention.TOP_K, level.cell ** 2)
        np.testing.assert_allclose(level.top_p[..., :kept], top[..., :kept], atol=1e-6)
        # each reported position holds the probability reported for it (ties may order either way)
        found = level.top_q >= 0
        np.testing.assert_allclose(full[level.top_q[found], level.top_k[found]], level.top_p[found], atol=1e-6)
        assert (level.top_q[found] // level.cell == np.nonzero(found)[0]).all()


def test_the_fine_mass_grid_equals_brute_force_from_the_full_matrix(long_pass, full):
    cell = long_attention.fine_cell(LENGTH)
    assert cell < long_pass.levels[1][0].cell
    _, mass, _, _ = brute_level(full, cell)
    np.testing.assert_allclose(long_pass.fine_mass[1], mass, atol=1e-6, rtol=1e-5)


def test_a_saved_pass_reopens_with_every_summary_and_an_older_file_is_recomputed(long_pass, tmp_path):
    path = tmp_path / "pass.npz"
    long_attention.save_pass(long_pass, path, "k")
    again = long_attention.load_pass(path, long_pass.cfg, "k")
    assert again.checksum() == long_pass.checksum()
    np.testing.assert_array_equal(again.fine_mass[1], long_pass.fine_mass[1])
    assert long_attention.load_pass(path, long_pass.cfg, "another key") is None
    with np.load(path) as data:   # as written before the fine grid: no longer trusted, recomputed
        older = {name: data[name] for name in data.files if not name.endswith("fine_mass")}
    np.savez(tmp_path / "older.npz", **older)
    assert long_attention.load_pass(tmp_path / "older.npz", long_pass.cfg, "k") is None


def test_the_wgpu_kernels_give_the_same_pass_as_torch(long_pass, full):
    """`llmviz longctx --attention wgpu`: the engine's WGSL online softmax in place of torch's tiles (where a
    wgpu device exists): the same row statistics and summaries as the brute-force matrix."""
    from llmviz.engine.compute.attention import compute_unavailable
    from llmviz.scenes.cli.longctx_cmd import wgpu_attention

    reason = compute_unavailable()
    if reason is not None:
        pytest.skip(f"no wgpu device: {reason}")
    weights = long_attention.ModelWeights.from_model(induction_model.load_weights())
    tokens, _ = induction_task.long_sequence(LENGTH)
    gpu = long_attention.run(weights, tokens, heads=[1], tile=512, attention=wgpu_attention)
    np.testing.assert_allclose(gpu.row_max, long_pass.row_max, atol=1e-4)
    np.testing.assert_allclose(gpu.row_log_sum, long_pass.row_log_sum, atol=1e-4)
    _, mass, _, _ = brute_level(full, gpu.levels[1][0].cell)
    np.testing.assert_allclose(gpu.levels[1][0].mass, mass, atol=1e-4)
    np.testing.assert_allclose(gpu.block(1, 4000, 4096, 0, 300), full[4000:4096, :300], atol=1e-5)
    assert (gpu.predicted == long_pass.predicted).mean() > 0.999


def test_row_entropies_and_masses_add_up(long_pass, full):
    base = long_pass.levels[1][0]
    np.testing.assert_allclose(base.mass.sum(1)[:-1], 8.0, rtol=1e-5)   # each row's 8 rows sum to 1 each
    with np.errstate(divide="ignore", invalid="ignore"):
        row_entropy = -np.where(full > 0, full * np.log(full), 0).sum(1)
    np.testing.assert_allclose(base.entropy.sum(1), row_entropy.reshape(-1, 8).sum(1), rtol=1e-4)


@pytest.mark.parametrize("q0,q1,k0,k1", [(0, 64, 0, 64), (4000, 4096, 0, 300), (1500, 1700, 1450, 1720),
                                         (2047, 2049, 2040, 2050), (-5, 10, 3000, 4200)])
def test_zoomed_blocks_equal_the_full_matrix(long_pass, full, q0, q1, k0, k1):
    block = long_pass.block(1, q0, q1, k0, k1)
    a, b, c, d = max(q0, 0), min(q1, LENGTH), max(k0, 0), min(k1, LENGTH)
    np.testing.assert_allclose(block, full[a:b, c:d], atol=1e-6)


def test_the_sliding_window_layer_is_tiled_inside_its_window():
    """Layer 0: a query sees itself and the window - 1 keys before it, nothing else; rows sum to 1."""
    weights = long_attention.ModelWeights.from_model(induction_model.load_weights())
    tokens, _ = induction_task.long_sequence(600, seed=5)
    result = long_attention.run(weights, tokens, heads=[0], layer=0, tile=128)
    block = result.block(0, 0, 600, 0, 600)
    rows, cols = np.indices(block.shape)
    inside = (cols <= rows) & (cols > rows - weights.cfg.window)
    assert (block[~inside] == 0).all() and (block[inside] > 0).all()
    np.testing.assert_allclose(block.sum(1), 1.0, rtol=1e-5)


def test_summaries_stay_bounded_as_the_length_grows():
    """The base grid never exceeds BASE_GRID cells a side: the summaries' memory does not grow with T^2."""
    for length in (4096, 131_072, 1 << 21):
        assert -(-length // long_attention.base_cell(length)) <= long_attention.BASE_GRID


def test_longctx_cli_prints_its_figures_and_refuses_bad_arguments(capsys):
    from llmviz.scenes.cli.main import main

    assert main(["longctx", "--length", "1024", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["length"] == 1024 and report["peak_rss_mb"] > 0 and len(report["summary_checksum"]) == 16
    for bad in (["--length", "1e9"], ["--length", "12"], ["--length", "1024", "--model", "gpt-4"],
                ["--length", "1024", "--head", "9"], ["--length", "1024", "--temperature-tuning", "nan"],
                ["--length", "1024", "--temperature-tuning", "5"]):
        assert main(["longctx", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
