"""Compute shaders on a wgpu device for the numbers llmviz shows: attention of one head, full and tiled online-softmax.

Entry points (engine/compute/attention.py; numpy arrays in, numpy arrays out, no model knowledge):

    head_attention(q, k, v, causal=True)      live traces: the probabilities and the output of one head (or a stack)
    online_attention(q, k, v, causal=True)    long-context tiles: output, row max, row sum, never a T x T array
    compute_unavailable()                      None, or the one-line reason no kernel can run here

engine/compute/self_check.py runs both on a fixed random case against a numpy reference (`llmviz doctor`).
The WGSL sources are shaders/compute_*.wgsl.
"""
