"""RWKV time mixing and channel mixing bands."""
from __future__ import annotations

from ..layout_blocks import Dims, linear, norm_part
from ..layout_parts import ATTACHED_GAP, KIND_ACTIVATION, KIND_SCORES, KIND_WEIGHT, Part, block, grouped, hstack, titled, vstack


def _vectors(prefix: str, names: list[str], width: int) -> Part:
    return vstack([block(f"{prefix}.{n}", KIND_WEIGHT, (width,), n) for n in names],
                  gap=ATTACHED_GAP, align="left")


def time_mix_band(d: Dims, mixer: str) -> tuple[Part, str]:
    """RWKV time mixing: token-shift mixes, key/value/receptance, the WKV recurrence, output."""
    arch, c, tok = d.arch, d.c, d.tok
    p = "time_mix"
    rows = [norm_part("ln1", d, "LayerNorm"),
            block(f"{p}.shift", KIND_ACTIVATION, (tok, c), "token shift: the previous token's input")]
    names = ["mix_k", "mix_v", "mix_r"] if mixer == "rwkv4" else \
        ["mix_x", "mix_w", "mix_k", "mix_v", "mix_r", "mix_g"]
    rows.append(_vectors(p, names, c))
    if mixer == "rwkv6":
        lora, dl = arch.rwkv.mix_lora_dim, arch.rwkv.decay_lora_dim
        rows.append(hstack([block(f"{p}.mix_lora_a", KIND_WEIGHT, (c, 5 * lora), "mix LoRA A"),
                            block(f"{p}.mix_lora_b", KIND_WEIGHT, (5 * lora, c), "mix LoRA B"),
                            block(f"{p}.decay_lora_a", KIND_WEIGHT, (c, dl), "decay LoRA A"),
                            block(f"{p}.decay_lora_b", KIND_WEIGHT, (dl, c), "decay LoRA B")],
                           align="top"))
    projections = ["receptance", "key", "value"] + (["gate"] if mixer == "rwkv6" else [])
    for name in projections:
        rows.append(linear(f"{p}.{name}.weight", (c, c), f"W_{name[0]}", f"{p}.{name}", (tok, c), name))
    rows.append(_vectors(p, ["decay", "bonus"], c))
    # The recurrence's state after each token, per channel: WKV is its numerator over its denominator,
    # each decayed by exp(−exp(decay)) per step before the token adds e^k·v and e^k.
    rows.append(block(f"{p}.num", KIND_ACTIVATION, (tok, c), "state: numerator a"))
    rows.append(block(f"{p}.den", KIND_ACTIVATION, (tok, c), "state: denominator b"))
    rows.append(block(f"{p}.wkv", KIND_ACTIVATION, (tok, c), "WKV"))
    if mixer == "rwkv4":   # RWKV-4's WKV is a softmax attention per channel: its weights, averaged
        rows.append(block(f"{p}.alpha", KIND_SCORES, (tok, tok), f"hidden attention (mean of {c} channels)"))
    if mixer == "rwkv6":
        rows.append(vstack([block(f"{p}.ln_x.weight", KIND_WEIGHT, (c,), "γ"),
                            block(f"{p}.ln_x", KIND_ACTIVATION, (tok, c), "GroupNorm")],
                           gap=ATTACHED_GAP, align="left"))
    rows.append(linear(f"{p}.out.weight", (c, c), "W_o", f"{p}.out", (tok, c), "time-mix out"))
    band = vstack(rows, align="right")
    return grouped(titled(band, "Time mixing", frac=0.05), p, "Time mixing"), f"{p}.out"


def channel_mix_band(d: Dims) -> tuple[Part, str]:
    """RWKV channel mixing: a squared-ReLU MLP gated by a receptance."""
    c, tok, f = d.c, d.tok, d.arch.d_ff
    p = "channel_mix"
    rows = [norm_part("ln2", d, "LayerNorm"),
            block(f"{p}.shift", KIND_ACTIVATION, (tok, c), "token shift: the previous token's input"),
            _vectors(p, ["mix_k", "mix_r"], c),
            linear(f"{p}.key.weight", (f, c), "W_k", f"{p}.key", (tok, f), "key",
                   after=(block(f"{p}.act", KIND_ACTIVATION, (tok, f), "ReLU²"),)),
            linear(f"{p}.value.weight", (c, f), "W_v", f"{p}.value", (tok, c), "value"),
            linear(f"{p}.receptance.weight", (c, c), "W_r", f"{p}.receptance", (tok, c), "receptance"),
            block(f"{p}.out", KIND_ACTIVATION, (tok, c), "σ(r)·value")]
    band = vstack(rows, align="left")
    return grouped(titled(band, "Channel mixing", frac=0.05), p, "Channel mixing"), f"{p}.out"
