"""Torch simulations that record every intermediate for the scene to show.

Modules (import them directly; this package imports nothing, so the layout can use
tensor_ids without loading torch):
  tensor_ids      the id scheme shared with the layout (activation_ids, weight_ids, AXES)
  trace           ActivationTrace, the ordered id -> array map with axis names
  sort_task       the letter-sorting task of the nano-GPT: format, split, validation
  nanogpt         the nano-GPT module, its traced forward pass, weights I/O
  train_nanogpt   deterministic training that reproduces the shipped weights
  tick            the worker-thread runner that keeps torch off the render thread
"""
