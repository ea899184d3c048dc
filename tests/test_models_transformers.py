"""Parameter counts checked against an independent implementation: tiny random-weight models
built with `transformers` (CPU, nothing downloaded) must hold exactly as many parameters as our
counter computes for the same architecture written as a spec."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from llmviz.models.params import count_params  # noqa: E402
from llmviz.models.spec import parse_spec  # noqa: E402

VOCAB = 101
# Token ids inside the tiny vocabulary, for configs whose defaults point past it.
TOKEN_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)


def ours(kind="decoder-only", **architecture):
    spec = parse_spec({"id": "tiny", "name": "tiny", "kind": kind, "sources": [],
                       "architecture": architecture}, file="tiny.json")
    return count_params(spec)


def theirs(model) -> int:
    # Trainable parameters, shared (tied) tensors once. Whisper's sinusoidal encoder table is
    # a frozen nn.Embedding there and a buffer in openai/whisper; neither counts it as learned.
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def llama_like(**overrides):
    base = dict(n_layers=2, d_model=48, n_heads=4, n_kv_heads=2, d_ff=80, vocab_size=VOCAB,
                pos_encoding="rope", norm="rmsnorm", activation="swiglu", unembedding="untied")
    return base | overrides


def test_gpt2_matches():
    config = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=4, vocab_size=VOCAB,
                                     n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    counted = ours(n_layers=3, d_model=32, n_heads=4, d_ff=128, vocab_size=VOCAB,
                   context_length=16, pos_encoding="learned", norm="layernorm",
                   activation="gelu", bias=True, unembedding="tied")
    assert counted.total == theirs(model)


@pytest.mark.parametrize("kv_heads,tied", [(4, False), (2, False), (1, True)])
def test_llama_matches_mha_gqa_mqa(kv_heads, tied):
    config = transformers.LlamaConfig(hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=kv_heads,
                                      vocab_size=VOCAB, tie_word_embeddings=tied)
    counted = ours(**llama_like(n_kv_heads=kv_heads, unembedding="tied" if tied else "untied"))
    assert counted.total == theirs(transformers.LlamaForCausalLM(config))


def test_mixtral_matches_total_and_active():
    config = transformers.MixtralConfig(hidden_size=48, intermediate_size=40, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2,
                                        num_local_experts=4, num_experts_per_tok=2,
                                        vocab_size=VOCAB)
    model = transformers.MixtralForCausalLM(config)
    counted = ours(**llama_like(d_ff=None, moe=dict(n_experts=4, top_k=2, expert_d_ff=40,
                                                    routing="topk-softmax")))
    assert counted.total == theirs(model)
    one_expert = 3 * 48 * 40
    assert counted.active == counted.total - 2 * 2 * one_expert   # 2 layers x 2 idle experts


def test_qwen3_moe_matches():
    config = transformers.Qwen3MoeConfig(
        hidden_size=32, intermediate_size=64, moe_intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=8,
        num_experts_per_tok=2, decoder_sparse_step=1, mlp_only_layers=[], vocab_size=VOCAB,
        tie_word_embeddings=False)
    counted = ours(**llama_like(d_model=32, head_dim=16, qk_norm=True, d_ff=None,
                                moe=dict(n_experts=8, top_k=2, expert_d_ff=24,
                                         routing="topk-softmax")))
    assert counted.total == theirs(transformers.Qwen3MoeForCausalLM(config))


def test_deepseek_v3_mla_and_shared_experts_match():
    config = transformers.DeepseekV3Config(
        hidden_size=64, intermediate_size=96, moe_intermediate_size=16, num_hidden_layers=3,
        first_k_dense_replace=1, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
        n_group=2, topk_group=1, num_attention_heads=4, num_key_value_heads=4, q_lora_rank=24,
        kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
        vocab_size=VOCAB, tie_word_embeddings=False)
    # transformers keeps the balancing bias as a buffer, so router_bias is off here.
    counted = ours(**llama_like(
        n_layers=3, d_model=64, n_kv_heads=None, d_ff=96,
        mla=dict(q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4,
                 v_head_dim=8),
        moe=dict(n_experts=8, top_k=2, expert_d_ff=16, n_shared_experts=1,
                 routing="sigmoid-grouped", n_groups=2, topk_groups=1, layers=dict(start=1))))
    assert counted.total == theirs(transformers.DeepseekV3ForCausalLM(config))


def test_gemma_geglu_mqa_matches():
    config = transformers.GemmaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                      vocab_size=VOCAB)
    counted = ours(**llama_like(n_kv_heads=1, head_dim=16, d_ff=96, activation="geglu",
                                unembedding="tied"))
    assert counted.total == theirs(transformers.GemmaForCausalLM(config))


def test_mamba_matches():
    config = transformers.MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=VOCAB,
                                      state_size=8, conv_kernel=4, expand=2, time_step_rank=4)
    counted = ours("ssm", n_layers=2, d_model=32, mixer="mamba", vocab_size=VOCAB,
                   pos_encoding="none", norm="rmsnorm", unembedding="tied",
                   ssm=dict(d_state=8, d_conv=4, expand=2, dt_rank=4))
    assert counted.total == theirs(transformers.MambaForCausalLM(config))


def test_mamba2_matches():
    config = transformers.Mamba2Config(hidden_size=32, num_hidden_layers=2, vocab_size=VOCAB,
                                       state_size=8, expand=2, head_dim=8, num_heads=8,
                                       n_groups=1, conv_kernel=4, tie_word_embeddings=False)
    counted = ours("ssm", n_layers=2, d_model=32, mixer="mamba2", vocab_size=VOCAB,
                   pos_encoding="none", norm="rmsnorm", unembedding="untied",
                   ssm=dict(d_state=8, d_conv=4, expand=2, head_dim=8))
    assert counted.total == theirs(transformers.Mamba2ForCausalLM(config))


def test_rwkv4_matches():
    config = transformers.RwkvConfig(hidden_size=32, num_hidden_layers=2, vocab_size=VOCAB,
                                     attention_hidden_size=32, intermediate_size=64,
                                     context_length=16)
    counted = ours("ssm", n_layers=2, d_model=32, mixer="rwkv4", d_ff=64, vocab_size=VOCAB,
                   pos_encoding="none", norm="layernorm", activation="relu2",
                   unembedding="untied")
    assert counted.total == theirs(transformers.RwkvForCausalLM(config))


def test_jamba_hybrid_moe_matches():
    config = transformers.JambaConfig(
        hidden_size=32, intermediate_size=48, num_hidden_layers=8, attn_layer_period=8,
        attn_layer_offset=4, expert_layer_period=2, expert_layer_offset=1, num_experts=4,
        num_experts_per_tok=2, num_attention_heads=4, num_key_value_heads=2, mamba_d_state=8,
        mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=4, vocab_size=VOCAB,
        tie_word_embeddings=False, **TOKEN_IDS)
    counted = ours("hybrid", **llama_like(
        n_layers=8, d_model=32, d_ff=48, pos_encoding="none",
        hybrid=dict(period=["mamba"] * 4 + ["attention"] + ["mamba"] * 3),
        ssm=dict(d_state=8, d_conv=4, expand=2, dt_rank=4, inner_norms=True),
        moe=dict(n_experts=4, top_k=2, expert_d_ff=48, routing="softmax-topk",
                 layers=dict(start=1, step=2))))
    assert counted.total == theirs(transformers.JambaForCausalLM(config))


def test_whisper_encoder_decoder_matches():
    config = transformers.WhisperConfig(
        d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=VOCAB,
        num_mel_bins=16, max_source_positions=30, max_target_positions=20,
        decoder_start_token_id=1, **TOKEN_IDS)
    layer = dict(d_model=32, n_heads=4, d_ff=64, norm="layernorm", activation="gelu",
                 bias=True, key_bias=False)
    counted = ours("encoder-decoder", n_layers=3, vocab_size=VOCAB, context_length=20,
                   pos_encoding="learned", unembedding="tied", cross_attention=True,
                   modalities=["audio", "text"], **layer,
                   components=[dict(type="encoder", name="audio", role="audio-encoder",
                                    n_layers=2, context_length=30, pos_encoding="sinusoidal",
                                    input=dict(type="conv1d", in_channels=16, kernel=3,
                                               strides=[1, 2]), **layer)])
    assert counted.total == theirs(transformers.WhisperForConditionalGeneration(config))


def clip_vision_tower(**overrides):
    tower = dict(type="encoder", name="vision", role="vision-encoder", n_layers=3, d_model=32,
                 n_heads=4, d_ff=64, pos_encoding="learned", norm="layernorm",
                 activation="quick_gelu", bias=True, pre_norm=True,
                 input=dict(type="patches", patch_size=7, image_size=28, cls_token=True,
                            bias=False))
    return tower | overrides


def test_vit_matches():
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, image_size=28, patch_size=7)
    model = transformers.ViTModel(config, add_pooling_layer=False)
    counted = ours("multimodal", n_layers=2, d_model=32, n_heads=4, d_ff=64,
                   pos_encoding="learned", norm="layernorm", activation="gelu", bias=True,
                   causal=False, unembedding="none", modalities=["image"],
                   input=dict(type="patches", patch_size=7, image_size=28, cls_token=True))
    assert counted.total == theirs(model)


def test_clip_dual_encoder_matches():
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, vocab_size=VOCAB, max_position_embeddings=16),
        vision_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                           num_attention_heads=4, image_size=28, patch_size=7),
        projection_dim=24)
    counted = ours("multimodal", n_layers=2, d_model=32, n_heads=4, d_ff=64, vocab_size=VOCAB,
                   context_length=16, pos_encoding="learned", norm="layernorm",
                   activation="quick_gelu", bias=True, unembedding="none", output_dim=24,
                   modalities=["text", "image"], fusion="contrastive",
                   components=[clip_vision_tower(d_model=48, d_ff=96, output_dim=24),
                               dict(type="parameter", name="logit_scale", role="head",
                                    shape=[])])
    assert counted.total == theirs(transformers.CLIPModel(config))


def test_llava_tower_projector_and_llm_match():
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                                    num_hidden_layers=3, num_attention_heads=4,
                                                    image_size=28, patch_size=7),
        text_config=transformers.LlamaConfig(hidden_size=48, intermediate_size=80,
                                             num_hidden_layers=2, num_attention_heads=4,
                                             num_key_value_heads=4, vocab_size=VOCAB),
        projector_hidden_act="gelu")
    counted = ours("multimodal", **llama_like(
        n_kv_heads=4, modalities=["text", "image"], fusion="prefix-tokens",
        components=[clip_vision_tower(),
                    dict(type="projector", name="projector", role="projector",
                         dims=[32, 48, 48], activation="gelu")]))
    assert counted.total == theirs(transformers.LlavaForConditionalGeneration(config))


def test_paligemma_siglip_projector_and_gemma_match():
    config = transformers.PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32,
                           intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=28, patch_size=7, vision_use_head=False),
        text_config=dict(model_type="gemma", hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                         head_dim=16, vocab_size=VOCAB),
        projection_dim=48)
    counted = ours("multimodal", **llama_like(
        n_kv_heads=1, head_dim=16, d_ff=96, activation="geglu", unembedding="tied",
        modalities=["text", "image"], fusion="prefix-tokens",
        components=[dict(type="encoder", name="vision", role="vision-encoder", n_layers=2,
                         d_model=32, n_heads=4, d_ff=64, pos_encoding="learned",
                         norm="layernorm", activation="gelu", bias=True,
                         input=dict(type="patches", patch_size=7, image_size=28)),
                    dict(type="projector", name="projector", role="projector",
                         dims=[32, 48])]))
    assert counted.total == theirs(transformers.PaliGemmaForConditionalGeneration(config))


@settings(max_examples=10, deadline=None)
@given(layers=st.integers(1, 3), heads=st.integers(1, 4), head_dim=st.sampled_from([2, 4, 6, 8]),
       kv_divisor=st.sampled_from([1, 2, 4]), d_ff=st.integers(1, 40), vocab=st.integers(2, 60),
       tied=st.booleans())
def test_random_llama_shapes_match(layers, heads, head_dim, kv_divisor, d_ff, vocab, tied):
    # transformers refuses odd rotary dimensions, so head_dim is even here.
    kv_heads = heads // kv_divisor if heads % kv_divisor == 0 else heads
    config = transformers.LlamaConfig(
        hidden_size=heads * head_dim, intermediate_size=d_ff, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
        tie_word_embeddings=tied, pad_token_id=0, bos_token_id=0, eos_token_id=1)
    counted = ours(**llama_like(n_layers=layers, d_model=heads * head_dim, n_heads=heads,
                                n_kv_heads=kv_heads, d_ff=d_ff, vocab_size=vocab,
                                unembedding="tied" if tied else "untied"))
    assert counted.total == theirs(transformers.LlamaForCausalLM(config))


@settings(max_examples=10, deadline=None)
@given(layers=st.integers(1, 3), heads=st.integers(1, 4), head_dim=st.integers(1, 8),
       positions=st.integers(1, 32), vocab=st.integers(2, 60))
def test_random_gpt2_shapes_match(layers, heads, head_dim, positions, vocab):
    d = heads * head_dim
    config = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads, vocab_size=vocab,
                                     n_positions=positions, bos_token_id=0, eos_token_id=1)
    counted = ours(n_layers=layers, d_model=d, n_heads=heads, d_ff=4 * d, vocab_size=vocab,
                   context_length=positions, pos_encoding="learned", norm="layernorm",
                   activation="gelu", bias=True, unembedding="tied")
    assert counted.total == theirs(transformers.GPT2LMHeadModel(config))
