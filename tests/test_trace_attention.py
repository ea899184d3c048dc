"""Live traces' attention by engine/compute's WGSL kernel (scenes/trace_attention.py): nano-GPT's, the MoEs' and
jamba-tiny's traces with the kernel in torch's place equal their torch traces to 1e-5, every recorded tensor; a scene drawn by
the wgpu backend traces with the kernel and says so, one drawn by GL with torch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llmviz.engine.compute import attention as compute  # noqa: E402
from llmviz.models.sim import moe_corpus  # noqa: E402
from llmviz.scenes import trace_attention  # noqa: E402

TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def kernels():
    problem = compute.compute_unavailable()
    if problem:
        pytest.skip(f"no wgpu device for the compute kernels: {problem}")


def load(model_id: str):
    if model_id == "nano-gpt":
        from llmviz.models.sim.nanogpt import load_nanogpt

        return load_nanogpt(None), [0, 2, 1, 1, 0, 2]
    if model_id == "jamba-tiny":
        from llmviz.scenes.hybrid_live import _TracedJamba

        return _TracedJamba(), moe_corpus.encode("the cat sat on the mat; the cat sat")
    from llmviz.models.sim.moe_model import load_moe

    return load_moe(model_id), moe_corpus.encode("def f(x):\n    return x*x  # square")


def assert_same_trace(ours, reference) -> None:
    assert set(ours) == set(reference)
    for tensor_id in reference:
        np.testing.assert_allclose(ours[tensor_id], reference[tensor_id], atol=TOL, rtol=TOL, err_msg=tensor_id)


@pytest.mark.parametrize("model_id", ["nano-gpt", "moe-4", "jamba-tiny"])
def test_a_trace_with_the_wgsl_kernel_equals_torchs(model_id):
    model, tokens = load(model_id)
    reference = model.trace(tokens)
    shapes = []

    def counted(q, k, v, scale):
        shapes.append(q.shape)
        return trace_attention.causal_attention(q, k, v, scale)

    model.attention_kernel = counted
    ours = model.trace(tokens)
    heads = [i for i in reference if i.endswith(".softmax")]
    layers = sorted({i.split(".attn.")[0] for i in heads})
    per_layer = len(heads) // len(layers)
    assert shapes == [(per_layer, len(tokens), reference[f"{layers[0]}.attn.head.0.q"].shape[-1])] * len(layers)
    assert_same_trace(ours, reference)
    probs = ours[heads[0]]
    assert (probs[np.triu_indices(len(tokens), 1)] == 0).all()      # masked keys exactly 0
    if model_id != "jamba-tiny":   # a forward pass without a trace (training, generation) stays on torch
        with torch.no_grad():
            model(torch.tensor([tokens]))
    assert len(shapes) == len(layers)


def test_the_wgpu_backend_traces_nanogpt_with_the_kernel_and_gl_with_torch():
    from llmviz.engine.render.factory import BackendUnavailable, offscreen_renderer
    from llmviz.models.sim.nanogpt import load_nanogpt
    from llmviz.scenes.registry import build_scene

    try:
        renderer = offscreen_renderer("wgpu", (320, 180)).renderer
    except BackendUnavailable as err:
        pytest.skip(str(err))
    scene = build_scene("nano-gpt", renderer)
    try:
        session = scene.live.session
        assert scene.live.wait(60)
        assert session.attention.label.startswith("attention: WGSL compute kernel on ")
        tokens = [int(t) for t in session.trace["tokens"]]
        reference = load_nanogpt(None).trace(tokens)
        assert_same_trace(session.trace, reference)
        heads = [i for i in reference if i.endswith(".softmax")]
        # computed elsewhere than torch: somewhere the float32 rounding differs
        assert any(not np.array_equal(session.trace[i], reference[i]) for i in heads)
    finally:
        scene.close()
        renderer.release()
    assert trace_attention.for_renderer(type("GL", (), {"backend_name": "gl"})()) is None
