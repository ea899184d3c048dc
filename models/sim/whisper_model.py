"""whisper-tiny: a small speech recogniser that is exactly transformers' WhisperForConditionalGeneration,
its config, its vocabulary (ten digits and two specials), its shipped weights and how they are read.

Shape: 80 log-mel bins over 4-second clips (400 frames of 10 ms); the conv stem (kernel 3, the second
stride 2) to 200 encoder frames of 20 ms with fixed sinusoidal positions; 2 encoder and 2 decoder layers,
width 64, 4 heads, MLP 256 with exact GELU; the decoder's learned positions over 16 tokens; the output head
tied to the token embedding. The weights file is the state dict under transformers' names, the head held
once (the embedding), so `llmviz export-hf` copies it; whisper_trace.py recomputes it number by number.
"""
from __future__ import annotations

from llmviz.models.sim import audio_features
from llmviz.models.sim.text_model_files import TextModelFiles, config_from
from llmviz.models.sim.whisper_config import (DIGITS, EOT, EOT_ID, MODEL_ID, SOT, SOT_ID, VOCAB,  # noqa: F401
                                              WhisperTinyConfig, decode, encode)

CONFIG_FIELDS = {"n_mels": (int, 8, 128), "chunk_seconds": (int, 1, 30), "d_model": (int, 1, 1024),
                 "encoder_layers": (int, 1, 12), "decoder_layers": (int, 1, 12), "n_heads": (int, 1, 64),
                 "d_ff": (int, 1, 4096), "max_target_positions": (int, 2, 448),
                 "vocab_size": (int, len(VOCAB), len(VOCAB)), "ln_eps": (float, 1e-14, 1e-1)}


def checked_config(config: dict | WhisperTinyConfig | None = None) -> WhisperTinyConfig:
    return config_from(WhisperTinyConfig, config, lambda c: [
        (c.d_model % c.n_heads != 0, f"n_heads {c.n_heads} does not divide d_model {c.d_model}"),
        (c.d_model % 2 != 0, f"d_model {c.d_model} must be even (sine and cosine positions)")])


def whisper_config(config: dict | WhisperTinyConfig | None = None):
    """transformers.WhisperConfig for our config."""
    from transformers import WhisperConfig

    c = checked_config(config)
    return WhisperConfig(
        vocab_size=c.vocab_size, num_mel_bins=c.n_mels, encoder_layers=c.encoder_layers,
        decoder_layers=c.decoder_layers, encoder_attention_heads=c.n_heads, decoder_attention_heads=c.n_heads,
        d_model=c.d_model, encoder_ffn_dim=c.d_ff, decoder_ffn_dim=c.d_ff, activation_function="gelu",
        max_source_positions=c.n_source, max_target_positions=c.max_target_positions,
        decoder_start_token_id=SOT_ID, eos_token_id=EOT_ID, pad_token_id=EOT_ID, bos_token_id=EOT_ID,
        begin_suppress_tokens=None, suppress_tokens=None, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, scale_embedding=False, tie_word_embeddings=True, use_cache=True,
        # eager attention: the softmax the trace records is the one transformers computes
        attn_implementation="eager")


def our_config(model) -> WhisperTinyConfig:
    hf = model.config
    return WhisperTinyConfig(n_mels=hf.num_mel_bins, chunk_seconds=hf.max_source_positions * 2 * audio_features.HOP
                             // audio_features.SAMPLE_RATE, d_model=hf.d_model, encoder_layers=hf.encoder_layers,
                             decoder_layers=hf.decoder_layers, n_heads=hf.encoder_attention_heads,
                             d_ff=hf.encoder_ffn_dim, max_target_positions=hf.max_target_positions,
                             vocab_size=hf.vocab_size)


def state_shapes(config: dict | WhisperTinyConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The weights file's tensors and shapes under transformers' names (the tied proj_out left out)."""
    c = checked_config(config)
    d, f = c.d_model, c.d_ff
    e, dec = "model.encoder", "model.decoder"
    out = {f"{e}.conv1.weight": (d, c.n_mels, 3), f"{e}.conv1.bias": (d,), f"{e}.conv2.weight": (d, d, 3),
           f"{e}.conv2.bias": (d,), f"{e}.embed_positions.weight": (c.n_source, d),
           f"{dec}.embed_tokens.weight": (c.vocab_size, d), f"{dec}.embed_positions.weight": (c.max_target_positions, d)}

    def attention(p):
        out.update({f"{p}.q_proj.weight": (d, d), f"{p}.q_proj.bias": (d,), f"{p}.k_proj.weight": (d, d),
                    f"{p}.v_proj.weight": (d, d), f"{p}.v_proj.bias": (d,), f"{p}.out_proj.weight": (d, d),
                    f"{p}.out_proj.bias": (d,)})

    def layer(p, cross):
        attention(f"{p}.self_attn")
        norms = ("self_attn_layer_norm", "final_layer_norm") + (("encoder_attn_layer_norm",) if cross else ())
        if cross:
            attention(f"{p}.encoder_attn")
        for n in norms:
            out.update({f"{p}.{n}.weight": (d,), f"{p}.{n}.bias": (d,)})
        out.update({f"{p}.fc1.weight": (f, d), f"{p}.fc1.bias": (f,), f"{p}.fc2.weight": (d, f), f"{p}.fc2.bias": (d,)})

    for i in range(c.encoder_layers):
        layer(f"{e}.layers.{i}", False)
    for i in range(c.decoder_layers):
        layer(f"{dec}.layers.{i}", True)
    for s in (e, dec):
        out.update({f"{s}.layer_norm.weight": (d,), f"{s}.layer_norm.bias": (d,)})
    return out


def build_model(config: dict | WhisperTinyConfig | None = None):
    """A fresh WhisperForConditionalGeneration (transformers' init, sinusoidal encoder positions), float32, eval."""
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration(whisper_config(config)).float().eval()


def generation_config(alignment_heads) -> dict:
    """generation_config.json: greedy, the transcript after SOT, ended by EOT; Whisper's alignment heads."""
    return {"decoder_start_token_id": SOT_ID, "eos_token_id": EOT_ID, "pad_token_id": EOT_ID, "bos_token_id": EOT_ID,
            "max_length": WhisperTinyConfig().max_target_positions, "do_sample": False, "num_beams": 1,
            "alignment_heads": [list(h) for h in alignment_heads]}


FILES = TextModelFiles(MODEL_ID, CONFIG_FIELDS, checked_config, our_config, state_shapes, build_model,
                       tied_head=("proj_out.weight", "model.decoder.embed_tokens.weight"))
state_tensors, safetensors_bytes = FILES.state_tensors, FILES.safetensors_bytes
shipped_weights_path, load_weights = FILES.shipped_weights_path, FILES.load_weights
MAX_ALIGNMENT_HEADS = 64


def save_safetensors(model, path, extra_metadata: dict | None = None) -> None:
    """FILES.save, with the alignment heads training chose (model.generation_config.alignment_heads)."""
    heads = [list(map(int, h)) for h in getattr(model.generation_config, "alignment_heads", None) or []]
    FILES.save(model, path, {**(extra_metadata or {}), "alignment_heads": heads})


def alignment_heads(path=None, config: WhisperTinyConfig | None = None) -> list[list[int]]:
    """The [layer, head] pairs stored beside the weights, each checked against the decoder's size."""
    import json

    from llmviz.models.sim.weights_file import WeightsError, parse_header, read_bytes

    source = shipped_weights_path() if path is None else path
    name = f"shipped weights {MODEL_ID}.safetensors" if path is None else str(path)
    _, metadata = parse_header(read_bytes(source, name), name)
    cfg = config or checked_config(json.loads(metadata.get("llmviz", "{}")).get("config"))
    try:
        heads = json.loads(metadata["llmviz"])["alignment_heads"]
        ok = isinstance(heads, list) and 0 < len(heads) <= MAX_ALIGNMENT_HEADS and all(
            isinstance(h, list) and len(h) == 2 and all(type(v) is int for v in h)
            and 0 <= h[0] < cfg.decoder_layers and 0 <= h[1] < cfg.n_heads for h in heads)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise WeightsError(name, "the metadata's alignment_heads must be [layer, head] pairs of the decoder")
    return heads


def load_whisper(path=None):
    """The trained model, its generation config holding the alignment heads and the greedy settings."""
    model = FILES.load_model(path)
    for key, value in generation_config(alignment_heads(path, our_config(model))).items():
        setattr(model.generation_config, key, value)
    return model


# ---- `llmviz export-hf whisper-tiny`: the folder's files beside the weights ------------------------

def hf_config_json(spec, model) -> dict:
    """config.json: WhisperConfig's fields for the loaded weights' config, after checking the spec describes the
    same model (ExportError naming the first field that differs)."""
    from llmviz.models.export_hf import ExportError
    from llmviz.models.spec import EncoderComponent

    c, arch = model.cfg, spec.architecture
    audio = next(x for x in arch.components if isinstance(x, EncoderComponent))
    pairs = [("n_layers", arch.n_layers, c.decoder_layers), ("d_model", arch.d_model, c.d_model),
             ("n_heads", arch.n_heads, c.n_heads), ("d_ff", arch.d_ff, c.d_ff), ("vocab_size", arch.vocab_size,
                                                                                c.vocab_size),
             ("context_length", arch.context_length, c.max_target_positions),
             ("audio.n_layers", audio.n_layers, c.encoder_layers), ("audio.d_model", audio.d_model, c.d_model),
             ("audio.context_length", audio.context_length, c.n_source),
             ("audio.input.in_channels", audio.input.in_channels, c.n_mels)]
    for name, said, built in pairs:
        if said != built:
            raise ExportError(f"cannot export {spec.id}: the spec says {name} = {said}, its weights {built}")
    config = whisper_config(c).to_dict()
    config["architectures"] = ["WhisperForConditionalGeneration"]
    config.pop("transformers_version", None)
    return config


def tokenizer_json(model=None) -> dict:
    """tokenizer.json (the tokenizers library's): a byte-level BPE whose vocabulary is the ten digits, no merges,
    the two specials added; "314" is three tokens."""
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for i, tok in enumerate(VOCAB) if i >= len(DIGITS)],
            "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                                  "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                                "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {tok: i for i, tok in enumerate(VOCAB)}, "merges": []}}


def tokenizer_config(model=None) -> dict:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SOT, "eos_token": EOT, "pad_token": EOT,
            "model_max_length": WhisperTinyConfig().max_target_positions, "clean_up_tokenization_spaces": False}


def generation_config_json(model=None) -> dict:
    return generation_config(alignment_heads())


def export_preprocessor_config(model) -> dict:
    return audio_features.processor_config(model.cfg.n_mels, model.cfg.chunk_seconds)
