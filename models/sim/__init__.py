"""Torch simulations that record every intermediate for the scene to show.

Modules (import them directly; this package imports nothing, so the layout can use
tensor_ids without loading torch):
  tensor_ids      the id scheme shared with the layout (activation_ids, weight_ids, AXES)
  trace           ActivationTrace, the ordered id -> array map with axis names
  sort_task       the letter-sorting task of the nano-GPT: format, split, validation
  nanogpt         the nano-GPT module, its traced forward pass, weights I/O
  train_nanogpt   deterministic training that reproduces the shipped weights
  tick            the worker-thread runner that keeps torch off the render thread
  moe_corpus      the four-domain character corpus the small text models are trained on
  moe_model       the small MoEs (moe-4, moe-8): module, traced forward, weights I/O; train_moe trains them
  routing         the routers (softmax top-k, DeepSeek-V3's grouped sigmoid), tested against transformers
  mamba_model     mamba-tiny as transformers' MambaForCausalLM: config, weights I/O; train_mamba trains it
  mamba_trace     mamba-tiny's traced forward (the scan's every term), recurrent state, step form, hidden attention
  weights_file    the bounded safetensors reader every shipped weights file goes through
"""
