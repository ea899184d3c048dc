"""What each block and group of a model's layout is, in the model's own terms: its role in a sentence,
its shape in model units ("49152 × 12288 (d_ff × d_model)", "96 heads × 128") and its parameter count.

Roles are data: the tables of scenes/component_roles.py (id pattern, text, axes or shape, and the
architecture feature a row needs); an id is matched with its numbers written "#"
("blocks.#.attn.head.#.wq"), and the first row whose pattern and feature fit wins. Texts name the
model's sizes as {fields} (`units`); a sentence or shape part whose field the model lacks is left out.

Parameters are a column over the layout's blocks, made in a few numpy operations from each block's
kind and true dimensions with models/params.py's own rules: a weight or bias is its rows × cols, an
expert its whole MLP, a component its own count, a tied unembedding nothing (W_E holds it), the
multi-token-prediction module nothing (it is reported apart, as params.py does). The few tensors
the layout draws no block for (MLA's latent norms, QK norms, Jamba's inner norms, RWKV-6's GroupNorm
shift, a patch embedding's bias and class token, a conv stem's later layers) are listed by `undrawn`
and counted in the group that holds them. A group's count is the sum of everything below it, so the
root's is the model's total (tests/test_structure_readability.py checks that, and each of
params.py's groups, for every registry model).
"""
from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass

import numpy as np

from llmviz.common.i18n import num_text, sentence, tr
from llmviz.models.inventory import COMPONENT, folded, model_tensors
from llmviz.models.params import count_params, expert_params, human, mtp_module_params
from llmviz.models.spec import (GATED_ACTIVATIONS, Architecture, EncoderComponent, ModelSpec,
                                ParameterComponent, ProjectorComponent)
from llmviz.scenes.component_roles import (BLOCK_ROLES, COMPONENT_ROLES, GROUP_ROLES, KIND_ROLES,
                                           UNIT_NAMES, Role)
from llmviz.scenes.layout_blocks import ACTIVATION_NAMES, as_architecture
from llmviz.scenes.layout_parts import (KIND_BIAS, KIND_BUFFER, KIND_COMPONENT, KIND_EXPERT, KIND_NORM_STAT,
                                        KIND_RESIDUAL, KIND_SCORES, KIND_TOKENS, KIND_WEIGHT)


_LEARNED = (KIND_WEIGHT, KIND_BIAS)
_NUMBER = re.compile(r"(?<=\.)\d+(?=\.|$)")


def pattern_of(ident: str) -> str:
    """"blocks.3.attn.head.5.wq" -> "blocks.#.attn.head.#.wq": the id as the role tables key it."""
    return _NUMBER.sub("#", ident)


def _compile(pattern: str) -> re.Pattern:
    """A table pattern as a regex: "{a,b}" is a choice, "#" a number's place, everything else literal."""
    out = []
    for ch in pattern:
        out.append({"{": "(?:", "}": ")", ",": "|"}.get(ch) or re.escape(ch))
    return re.compile("".join(out))


_BLOCK_TABLE = [(_compile(r.pattern), r) for r in BLOCK_ROLES]
_GROUP_TABLE = [(_compile(r.pattern), r) for r in GROUP_ROLES]


def _find(table, ident: str, features: set[str]) -> Role | None:
    key = pattern_of(ident)
    for regex, role in table:
        if (not role.when or role.when in features) and regex.fullmatch(key):
            return role
    return None


# ---------------------------------------------------------------------- units and features

def units(arch: Architecture) -> dict[str, int]:
    """The architecture's sizes by name ("d_model": 12288, "d_ff": 49152, ...): what shapes are written in."""
    u: dict[str, int] = {}

    def put(name: str, value) -> None:
        if value:
            u[name] = int(value)

    put("d_model", arch.d_model)
    put("n_layers", arch.n_layers)
    put("d_ff", arch.d_ff)
    if arch.n_heads:
        put("n_heads", arch.n_heads)
        if arch.mla is None:  # MLA heads have no single width: see qk_head_dim and v_head_dim
            hd, kv = arch.head_width, arch.kv_heads
            put("head_dim", hd)
            put("n_kv_heads", kv)
            put("group_size", arch.n_heads // kv)
            put("q_width", arch.n_heads * hd)
            put("kv_width", kv * hd)
    if arch.vocab_size:
        pad = arch.vocab_pad_multiple
        put("vocab", math.ceil(arch.vocab_size / pad) * pad)
    put("context", arch.context_length)
    put("positions", arch.input.n_positions() or arch.context_length)
    if arch.pos_encoding == "learned":
        put("learned_positions", arch.input.n_positions() or arch.context_length)
    if arch.input.type == "conv1d":
        src = arch.input
        put("n_mels", src.in_channels)
        put("kernel", src.kernel)
        put("frames", (arch.context_length or 0) * math.prod(src.strides))
        put("conv1_in", src.in_channels * src.kernel)
        put("conv_in", arch.d_model * src.kernel)
    if arch.input.type == "patches":
        put("patch_size", arch.input.patch_size)
        put("n_patches", (arch.input.image_size // arch.input.patch_size) ** 2)
        put("patch_dim", arch.input.channels * arch.input.patch_size ** 2)
    put("output_dim", arch.output_dim)
    if arch.moe is not None:
        moe = arch.moe
        put("n_experts", moe.n_experts)
        put("top_k", moe.top_k)
        put("expert_d_ff", moe.expert_d_ff)
        put("n_shared", moe.n_shared_experts)
        if moe.n_shared_experts:
            put("shared_d_ff", moe.shared_expert_d_ff or moe.expert_d_ff)
        put("expert_matrices", 3 if arch.activation in GATED_ACTIVATIONS else 2)
    if arch.mla is not None:
        mla = arch.mla
        put("q_lora_rank", mla.q_lora_rank)
        put("kv_lora_rank", mla.kv_lora_rank)
        put("qk_nope_head_dim", mla.qk_nope_head_dim)
        put("qk_rope_head_dim", mla.qk_rope_head_dim)
        put("qk_head_dim", mla.qk_nope_head_dim + mla.qk_rope_head_dim)
        put("v_head_dim", mla.v_head_dim)
        put("v_width", arch.n_heads * mla.v_head_dim)
    if arch.ssm is not None:
        ssm = arch.ssm
        inner = ssm.expand * arch.d_model
        put("d_inner", inner)
        put("d_state", ssm.d_state)
        put("d_conv", ssm.d_conv)
        put("dt_rank", ssm.dt_rank)
        if ssm.head_dim:
            put("ssm_head_dim", ssm.head_dim)
            put("ssm_heads", inner // ssm.head_dim)
            put("xbc_width", inner + 2 * ssm.n_groups * ssm.d_state)
    if arch.rwkv is not None:
        put("mix_lora5", 5 * arch.rwkv.mix_lora_dim if arch.rwkv.mix_lora_dim else None)
        put("decay_lora", arch.rwkv.decay_lora_dim)
    for component in arch.components:  # what cross-attention reads: the encoder's output length
        if isinstance(component, EncoderComponent):
            put("memory", component.input.n_positions() or component.context_length)
            break
    return u


def _words(arch: Architecture) -> dict[str, str]:
    """The names the texts use besides sizes."""
    gated = arch.activation in GATED_ACTIVATIONS
    act = ACTIVATION_NAMES.get(arch.activation or "gelu", "the activation")
    shared = arch.moe is not None and arch.moe.n_shared_experts
    positional = arch.pos_encoding in ("learned", "sinusoidal")
    return {"act": act, "norm": "LayerNorm" if arch.norm == "layernorm" else "RMSNorm",
            "embedded": "each token's embedding plus its position" if positional else "each token's embedding",
            "expert_kind": f"{act}-gated MLP" if gated else f"{act} MLP",
            "seen": "the tokens before it" if arch.causal else "every token",
            "shared_plus": " plus the shared experts'" if shared else "",
            "shared_text": f", beside {arch.moe.n_shared_experts} shared expert"
                           f"{'s' if shared and shared > 1 else ''} every token uses" if shared else ""}


def _features(arch: Architecture) -> set[str]:
    f = {arch.norm, arch.unembedding}
    if arch.prefix_lm:
        f.add("prefix_lm")
    if arch.mla is not None:
        f.add("mla")
    elif arch.n_heads and arch.kv_heads < arch.n_heads:
        f.add("gqa")
    if arch.activation in GATED_ACTIVATIONS:
        f.add("gated")
    f.update(arch.layer_mixers()[:1] if arch.hybrid is None else arch.hybrid.period)
    return f


_MIXER_TEXT = {"attention": "self-attention, where tokens read from each other",
               "mamba": "a Mamba selective state-space scan", "mamba2": "a Mamba-2 state-space scan",
               "rwkv4": "RWKV time mixing, then channel mixing", "rwkv6": "RWKV-6 time mixing, then channel mixing"}


# The words _words and _layer_words fill in that do not depend on the model's sizes: translated with the sentences.
_PHRASES = ("each token's embedding plus its position", "each token's embedding", "the tokens before it",
            "every token", " plus the shared experts'", ", then an MLP", "each reads", "it reads",
            *_MIXER_TEXT.values(), _MIXER_TEXT["attention"] + ", cross-attention to the encoder's output")


def role_texts() -> list[str]:
    """Every role sentence the tables hold and the fixed words filled into them, in English (the texts a
    language's sentences files translate)."""
    texts = []
    for role in (*BLOCK_ROLES, *GROUP_ROLES):
        texts += [role.text] if isinstance(role.text, str) else list(role.text)
    return texts + list(KIND_ROLES.values()) + list(COMPONENT_ROLES.values()) + list(_PHRASES)


def _say(templates, fields: dict) -> str:
    """A role's sentences in the chosen language, filled in (one naming a field the model lacks left out)."""
    templates = (templates,) if isinstance(templates, str) else templates
    words = {k: sentence(v) if isinstance(v, str) and v else v for k, v in fields.items()}
    return " ".join(_fill(tuple(sentence(t) for t in templates), words))


def _layer_words(arch: Architecture, layer: int) -> tuple[dict, set]:
    """A layer's own fields and features: its mixer, and whether its feed-forward part is a mixture."""
    mixer = arch.layer_mixers()[layer]
    if mixer.startswith("rwkv"):
        ffn = ""
    elif arch.is_moe_layer(layer):
        ffn = f", then a mixture of {arch.moe.n_experts} experts"
    elif arch.has_ffn(layer):
        ffn = ", then an MLP"
    else:
        ffn = ""
    features = {mixer}
    mixer_text = _MIXER_TEXT.get(mixer, mixer)
    if mixer == "attention" and arch.cross_attention:
        mixer_text += ", cross-attention to the encoder's output"
    several = bool(ffn) or mixer.startswith("rwkv") or arch.cross_attention
    return {"layer": layer, "mixer_text": mixer_text, "ffn_text": ffn,
            "each": "each reads" if several else "it reads"}, features


def _fill(templates, fields: dict) -> list[str]:
    """Each template with its fields filled in; one that names a field the model lacks is left out."""
    out = []
    for template in ((templates,) if isinstance(templates, str) else templates):
        try:
            out.append(template.format_map(fields))
        except (KeyError, IndexError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Undrawn:
    """A learned tensor the layout has no block for, counted in the group that holds it."""
    group_id: str     # "blocks.3.attn"
    category: str     # its group in models/params.py's count ("attention", "embedding", ...)
    what: str         # "q_norm γ"
    count: int


def undrawn(arch: Architecture) -> list[Undrawn]:
    """The learned tensors of `arch` that the layout draws no block for (models/inventory.py declares
    them), each with the scope it is folded into."""
    return [Undrawn(t.id.rsplit(".", 1)[0], t.group, t.what, t.count) for t in folded(arch)]


def block_params(layout, arch: Architecture) -> np.ndarray:
    """Parameters each block holds, counted in the model's total (int64 per layout row)."""
    kind = np.asarray(layout.kind)
    rows, cols = np.asarray(layout.rows, np.int64), np.asarray(layout.cols, np.int64)
    out = np.where(np.isin(kind, _LEARNED), rows * cols, 0).astype(np.int64)
    experts = kind == KIND_EXPERT
    out[experts] = expert_params(arch, rows[experts])        # an expert block is (its d_ff) × d_model
    # Outside the layers, what a block holds is not its cells: a component stands for a whole stack, a
    # tied W_U's numbers are W_E's, a ViT's classifier and the MTP modules are reported apart.
    for t in model_tensors(arch, keep=lambda t: t.kind == COMPONENT or not t.counted, layers=False):
        try:
            out[layout.index(t.id)] = t.params
        except KeyError:
            pass
    return out


# Blocks drawn whose parameters the model's count leaves out: a ViT's classifier, whose size depends
# on the label set (the layout draws ImageNet-1k's).
APART = ("classifier.weight", "classifier.bias")


def _depth(parent: np.ndarray) -> np.ndarray:
    """Each group's depth below the root, in one vectorised pass per level."""
    depth = np.zeros(len(parent), np.int64)
    up = parent.copy()
    while (up >= 0).any():
        depth += up >= 0
        up = np.where(up >= 0, parent[np.maximum(up, 0)], -1)
    return depth


# ---------------------------------------------------------------------- descriptions

@dataclass(frozen=True)
class _Stack:
    """An encoder's own context for its blocks' texts: its architecture, sizes, words, features, tokens."""
    arch: Architecture
    units: dict
    fields: dict
    features: set
    n_tokens: int


@dataclass(frozen=True)
class Description:
    """What the tooltip and the details panel say about one block or group."""
    role: str           # what it does, in a sentence or two
    shape: str          # in model units: "49152 × 12288 (d_ff × d_model)", "96 heads × 128"
    params: int         # parameters counted in the model's total (0 for activations, a tied matrix, MTP)
    params_text: str    # "603,979,776 parameters (604.0M)", "activation: 49,152 values per token, not parameters"


def _count_text(n: int) -> str:
    return tr("component.param" if n == 1 else "component.params", n=n) + (f" ({num_text(human(n))})" if n >= 10_000
                                                                             else "")


class LayoutInfo:
    """Roles, model-unit shapes and parameter counts of one layout's blocks and groups (`info_for` makes one)."""

    def __init__(self, layout, spec: ModelSpec):
        self.layout, self.spec = layout, spec
        arch = self.arch = spec.architecture
        self.units = units(arch)
        from llmviz.scenes.layouts import family_of
        from llmviz.scenes.layouts.vit import IMAGENET_CLASSES

        family = family_of(spec)
        if family == "vit":
            self.units["n_classes"] = IMAGENET_CLASSES
        self.fields = {**self.units, **_words(arch)}
        self.features = _features(arch) | {family}
        # Each encoder laid out as a stack of its own ("vision.", "audio."): its sizes, words and features.
        self.stacks: dict[str, _Stack] = {}
        for comp in arch.components:
            if isinstance(comp, EncoderComponent) and f"{comp.name}." in getattr(layout, "stacks", {}):
                sub = as_architecture(comp)
                u = units(sub)
                self.stacks[f"{comp.name}."] = _Stack(sub, u, {**u, **_words(sub)}, _features(sub) | {"encoder"},
                                                      sub.input.n_positions() or sub.context_length)
        self.block_params = block_params(layout, arch)
        self.undrawn = undrawn(arch)
        count = count_params(spec)
        self.total, self.excluded = count.total, dict(count.excluded)
        # Group sums: each block into its group, each undrawn tensor into its group, then up the tree
        # one level at a time (deepest first), vectorised.
        parent = np.asarray(layout.group_parent, np.int64)
        n_groups = len(parent)
        own = np.zeros(n_groups, np.int64)
        group = np.asarray(layout.group, np.int64)
        inside = group >= 0
        np.add.at(own, group[inside], self.block_params[inside])
        self.undrawn_at: dict[int, list[Undrawn]] = {}
        for item in self.undrawn:
            g = self._group_or_root(item.group_id)
            own[g] += item.count
            self.undrawn_at.setdefault(g, []).append(item)
        total = own.copy()
        depth = _depth(parent)
        for level in range(int(depth.max()) if n_groups else 0, 0, -1):
            at = np.flatnonzero(depth == level)
            np.add.at(total, parent[at], total[at])
        self.group_params = total

    def _group_or_root(self, group_id: str) -> int:
        """The group's index, else its nearest existing ancestor ("blocks.3.attn" -> "blocks.3"), else the root."""
        while group_id:
            try:
                return self.layout.group_index(group_id)
            except KeyError:
                group_id = group_id.rpartition(".")[0]
        return 0

    # ------------------------------------------------------------------ blocks
    def _stack_of(self, ident: str) -> tuple[str, "_Stack | None"]:
        """The id inside its stack ("vision.blocks.3.attn" -> "blocks.3.attn") and the stack's context."""
        for prefix, stack in self.stacks.items():
            if ident.startswith(prefix):
                return ident[len(prefix):], stack
        return ident, None

    def _layer_context(self, ident: str, stack: "_Stack | None" = None) -> tuple[dict, set]:
        numbers = [int(n) for n in _NUMBER.findall(ident)]
        arch = stack.arch if stack is not None else self.arch
        fields, features = dict(stack.fields if stack else self.fields), set(stack.features if stack else self.features)
        if ident.startswith("blocks.") and numbers and numbers[0] < arch.n_layers:
            words, layer_features = _layer_words(arch, numbers[0])
            fields.update(words)
            features |= layer_features
        if numbers:
            fields["index"] = numbers[-1]
        return fields, features

    def block(self, row: int) -> Description:
        layout = self.layout
        ident, kind = layout.ids[row], int(layout.kind[row])
        if kind == KIND_COMPONENT:
            return self._component(row, ident)
        ident, stack = self._stack_of(ident)
        fields, features = self._layer_context(ident, stack)
        unit_sizes = stack.units if stack is not None else self.units
        role = _find(_BLOCK_TABLE, ident, features)
        text = _say(role.text, fields) if role is not None else sentence(KIND_ROLES.get(kind, ""))
        dims = _label_dims(layout.label[row], int(layout.rows[row]), int(layout.cols[row]))
        names = [self._axis_name(d, role.axes[k] if role is not None and k < len(role.axes) else "", unit_sizes)
                 for k, d in enumerate(dims)]
        shape = _shape_text(dims, names)
        params = int(self.block_params[row])
        if kind == KIND_EXPERT:
            matrices = self.units.get("expert_matrices", 2)
            r, c = int(layout.rows[row]), int(layout.cols[row])
            shape = tr("component.expert_shape3" if matrices == 3 else "component.expert_shape2", n=matrices, shape=shape)
            bias = tr("component.biases") if self.arch.bias else ""
            return Description(text, shape, params, f"{_count_text(params)}: {matrices} × {c:,} × {r:,}{bias}")
        if kind in _LEARNED:
            if params == 0 and ident in APART:
                cells = int(layout.rows[row]) * int(layout.cols[row])
                return Description(text, shape, 0, tr("component.apart_labels", n=cells,
                                                       total=num_text(human(self.total))))
            if params == 0 and ident == "lm_head.weight":
                tied = int(layout.rows[row]) * int(layout.cols[row])
                return Description(text, shape, 0, tr("component.tied", n=tied))
            return Description(text, shape, params, _count_text(params))
        if kind == KIND_BUFFER:
            cells = int(layout.rows[row]) * int(layout.cols[row])
            return Description(text, shape, 0, tr("component.buffer", n=cells))
        # Activations, scores, the residual stream, norm statistics, the input: computed, not learned.
        what = tr("component.kind." + {KIND_TOKENS: "input", KIND_SCORES: "scores", KIND_NORM_STAT: "statistic",
                                       KIND_RESIDUAL: "residual"}.get(kind, "activation"))
        drawn = tr("component.drawn_for", n=stack.n_tokens if stack is not None else layout.n_tokens)
        if not dims or dims[0] != "t":
            return Description(text, shape, 0, tr("component.not_params", what=what))
        rest = list(zip(dims[1:], names[1:]))
        if not rest:
            values = tr("component.one_id" if kind == KIND_TOKENS else "component.one_value")
        elif any(d == "t" for d, _ in rest):
            values = tr("component.per_key")
        else:
            width = math.prod(int(d) for d, _ in rest)
            unit = f" ({' × '.join(n or d for d, n in rest)})" if any(n for _, n in rest) else ""
            values = tr("component.value" if width == 1 else "component.values", n=width, unit=unit)
        return Description(text, shape, 0, tr("component.not_params_values", what=what, values=values, drawn=drawn))

    def _axis_name(self, dim: str, candidates: str, unit_sizes: dict | None = None) -> str:
        sizes = self.units if unit_sizes is None else unit_sizes
        options = candidates.split("|") if candidates else []
        if dim == "t":
            return "key positions" if "keys" in options else "tokens"
        value = int(dim) if dim.isdigit() else None
        for name in options:
            if name == "keys" and value is not None and value == self.units.get("memory"):
                return UNIT_NAMES["memory"]
            if sizes.get(name) == value:
                return UNIT_NAMES.get(name, name)
        return ""

    def _component(self, row: int, ident: str) -> Description:
        arch = self.arch
        if ident.startswith("mtp."):
            apart = mtp_module_params(arch)
            text = _say(_find(_BLOCK_TABLE, ident, self.features).text, self.fields)
            return Description(text, f"d_model {arch.d_model}", 0,
                               tr("component.apart", count=_count_text(apart), total=num_text(human(self.total))))
        component = next((c for c in arch.components if f"components.{c.name}" == ident), None)
        if component is None:
            return Description(sentence(KIND_ROLES[KIND_COMPONENT]), "", 0, "")
        text = sentence(COMPONENT_ROLES.get(component.role, KIND_ROLES[KIND_COMPONENT]))
        if isinstance(component, EncoderComponent):
            positions = component.input.n_positions() or component.context_length
            shape = f"{component.n_layers} layers × d_model {component.d_model}" + \
                (f", {component.n_heads} heads" if component.n_heads else "") + \
                (f", {positions} positions" if positions else "")
            text += " " + tr("component.one_block")
        elif isinstance(component, ProjectorComponent):
            shape = " → ".join(str(x) for x in component.dims)
        elif isinstance(component, ParameterComponent):
            shape = " × ".join(str(x) for x in component.shape) or "a scalar"
        else:
            shape = ""
        return Description(text, shape, int(self.block_params[row]), _count_text(int(self.block_params[row])))

    # ------------------------------------------------------------------ groups
    def group(self, g: int) -> Description:
        layout = self.layout
        ident, stack = self._stack_of(layout.group_ids[g])
        fields, features = self._layer_context(ident, stack)
        role = _find(_GROUP_TABLE, ident, features)
        text = _say(role.text, fields) if role is not None else ""
        shape = ", ".join(_fill(role.shape, fields)) if role is not None else ""
        params = int(self.group_params[g])
        params_text = _count_text(params)
        undrawn_here = [u for k, items in self.undrawn_at.items() if self._is_below(k, g) for u in items]
        if undrawn_here:
            extra = sum(u.count for u in undrawn_here)
            kinds = sorted({u.what for u in undrawn_here})
            params_text += tr("component.undrawn", n=extra, kinds="; ".join(kinds))
        if self.arch.unembedding == "tied" and ident == "output" and "lm_head.weight" in self._ids_below(g):
            params_text += tr("component.tied_group")
        if g == 0 and self.excluded:
            params_text += "; " + ", ".join(tr("component.excluded", n=num_text(human(v)), module=k.upper())
                                            for k, v in self.excluded.items())
        return Description(text, shape, params, params_text)

    def _ids_below(self, g: int) -> set[str]:
        """Ids of the blocks directly in group g (enough for the output group's W_U)."""
        return {self.layout.ids[r] for r in np.flatnonzero(np.asarray(self.layout.group) == g)}

    def _is_below(self, k: int, g: int) -> bool:
        parent = self.layout.group_parent
        while k >= 0:
            if k == g:
                return True
            k = int(parent[k])
        return False


def _label_dims(label: str, rows: int, cols: int) -> list[str]:
    """The block's dimensions as its caption states them ("Q  t×16" -> ["t", "16"]); else its rows and cols."""
    tail = label.rpartition("  ")[2]
    parts = tail.split("×")
    if tail and all(p == "t" or p.isdigit() for p in parts):
        return parts
    if rows == 1:
        return [str(cols)]
    return [str(rows), str(cols)]


def _shape_text(dims: list[str], names: list[str]) -> str:
    """["49152", "12288"], ["d_ff", "d_model"] -> "49152 × 12288 (d_ff × d_model)"."""
    numbers = " × ".join(dims)
    if not any(names):
        return numbers
    return f"{numbers} ({' × '.join(n or d for d, n in zip(dims, names))})"


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def info_for(layout, spec: ModelSpec | None = None) -> LayoutInfo | None:
    """The layout's LayoutInfo, made once (a few numpy passes; ~0.1 s on GPT-3). Without `spec`, the
    registry's spec of layout.spec_id; None when there is none (a layout of an unregistered spec)."""
    info = _CACHE.get(layout)
    if info is not None and (spec is None or info.spec is spec):
        return info
    if spec is None:
        from llmviz.models.registry import load_registry

        registry = load_registry()
        if layout.spec_id not in registry:
            return None
        spec = registry.get(layout.spec_id)
    info = LayoutInfo(layout, spec)
    _CACHE[layout] = info
    return info


__all__ = ["BLOCK_ROLES", "GROUP_ROLES", "COMPONENT_ROLES", "KIND_ROLES", "UNIT_NAMES", "Role", "Description",
           "LayoutInfo", "Undrawn", "info_for", "units", "undrawn", "block_params", "pattern_of"]
