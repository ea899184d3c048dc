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
  mamba_model     mamba-tiny as transformers' MambaForCausalLM (config, files); train_mamba trains it
  mamba_trace     mamba-tiny's traced forward (the scan's every term), recurrent state, step form, hidden attention
  mamba2_model, mamba2_trace, train_mamba2   the same for mamba2-tiny (Mamba2ForCausalLM)
  rwkv_model, rwkv_trace, train_rwkv         the same for rwkv-tiny (RwkvForCausalLM)
  jamba_model, jamba_trace, train_jamba      the same for jamba-tiny (JambaForCausalLM: attention, Mamba, MoE)
  text_model_files  the weights files of the small transformers-format models (names, config, tied head)
  sequence_trace    what their traces share: token checks, embedding and head records, the one-token step
  training        the optimisation loop and corpus recipe every small model trained here shares
  weights_file    the bounded safetensors reader every shipped weights file goes through
"""
