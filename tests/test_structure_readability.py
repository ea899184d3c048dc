"""Models without weights are as readable as live ones (issue 10, defect 7).

Hovering any block or group of a structure-only model says what it does, its shape in model units and
its parameter count; the focus details panel speaks in model units, never in world units ("box 965 ×
1065 × 2"); every expert, shared expert, router and MLA projection reports its real count. References
are independent of the code under test: the published dimensions (shared/reference/model_specs.json,
copied below by hand and checked against the file where it is present), counts multiplied out here
from them, and models/params.py's totals (checked against transformers and the published figures in
tests/test_models_params.py and tests/test_models_transformers.py).
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from llmviz.models.params import count_params
from llmviz.models.registry import load_registry
from llmviz.scenes import panels
from llmviz.scenes.focus import BLOCK, GROUP, ComponentTree, Node
from llmviz.scenes.hover import read_pick
from llmviz.scenes.layout import KIND_BIAS, KIND_WEIGHT, layout_model
from llmviz.scenes.model_scene import build_model_scene

REGISTRY = load_registry(include_user=False)
REFERENCE_FILE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "model_specs.json"
# From shared/reference/model_specs.json, read by hand (checked against the file below when it is there).
REFERENCE = {
    "gpt-3-175b": {"d_model": 12288, "d_ff": 49152, "n_heads": 96, "head_dim": 128},
    "llama-3-8b": {"d_model": 4096, "d_ff": 14336, "n_heads": 32, "n_kv_heads": 8, "head_dim": 128},
    "deepseek-v3": {"d_model": 7168, "d_ff": 18432, "n_heads": 128, "moe_expert_d_ff": 2048},
    "mixtral-8x7b": {"d_model": 4096, "moe_expert_d_ff": 14336},
    "mamba-2.8b": {"d_model": 2560, "ssm_expand": 2, "ssm_d_state": 16},
}
# Published totals (the same file's total_params) our per-component sums must land near.
PUBLISHED_TOTAL = {"gpt-3-175b": 175.0e9, "deepseek-v3": 671e9, "llama-3-70b": 70e9, "mixtral-8x7b": 46.7e9}


def test_the_hand_copied_reference_matches_the_reference_file():
    if not REFERENCE_FILE.exists():
        pytest.skip("shared/reference/model_specs.json is not beside this checkout")
    rows = {row["id"]: row for row in json.loads(REFERENCE_FILE.read_text())}
    for model_id, fields in REFERENCE.items():
        for name, value in fields.items():
            assert rows[model_id][name] == value, (model_id, name)


@pytest.fixture(scope="module")
def scenes():
    """Structure-only scenes (no renderer, no weights), built once."""
    built = {}

    def get(model_id):
        if model_id not in built:
            built[model_id] = build_model_scene(REGISTRY.get(model_id))
        return built[model_id]
    return get


def hover_block(scene, tensor_id):
    return read_pick(scene, None, scene.slot_of(tensor_id), None)


def hover_group(scene, group_id):
    return read_pick(scene, None, int(scene.group_slots[scene.layout.group_index(group_id)]), None)


def count_in(text: str) -> int:
    """The first parameter count a text states ("1,572,864 parameters")."""
    found = re.search(r"([\d,]+) parameters?", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


# ---------------------------------------------------------------------------- tooltips

@pytest.mark.parametrize("model_id, tensor_id, expected, shape, words", [
    ("gpt-3-175b", "blocks.0.mlp.fc.weight", lambda r: r["d_model"] * r["d_ff"],
     "49152 × 12288 (d_ff × d_model)", "MLP"),
    ("gpt-3-175b", "blocks.5.attn.head.7.wq", lambda r: r["head_dim"] * r["d_model"],
     "128 × 12288 (head_dim × d_model)", "query"),
    ("gpt-3-175b", "blocks.0.mlp.fc.bias", lambda r: r["d_ff"], "49152 (d_ff)", "bias"),
    ("llama-3-8b", "blocks.2.attn.kv_head.3.wk", lambda r: r["head_dim"] * r["d_model"],
     "128 × 4096 (head_dim × d_model)", "shared by 4 query heads"),
    ("llama-3-8b", "blocks.2.mlp.gate.weight", lambda r: r["d_ff"] * r["d_model"],
     "14336 × 4096 (d_ff × d_model)", "gate"),
    ("mamba-2.8b", "blocks.1.mamba.x.weight", lambda r: r["ssm_expand"] * r["d_model"] * r["d_model"],
     "5120 × 2560 (d_inner × d_model)", "scan"),
    ("mamba-2.8b", "blocks.1.mamba.A_log", lambda r: r["ssm_expand"] * r["d_model"] * r["ssm_d_state"],
     "5120 × 16 (d_inner × d_state)", "decays"),
    ("deepseek-v3", "blocks.0.attn.kv_latent.weight", lambda r: 512 * r["d_model"],
     "512 × 7168 (kv_lora_rank × d_model)", "latent"),
    ("deepseek-v3", "blocks.3.moe.router.weight", lambda r: 256 * r["d_model"],
     "256 × 7168 (n_experts × d_model)", "expert"),
])
def test_a_structure_only_block_says_its_role_shape_and_parameters(scenes, model_id, tensor_id, expected, shape,
                                                                    words):
    reading = hover_block(scenes(model_id), tensor_id)
    assert words.lower() in reading.role.lower()
    assert reading.shape == shape
    assert count_in(reading.params) == expected(REFERENCE[model_id])
    assert "structure only" in reading.note
    # And the tooltip draws all three.
    texts = [text for _, text in panels.tooltip_lines(reading)]
    assert reading.role in texts and f"shape: {shape}" in texts and reading.params in texts


def test_an_activation_says_it_is_one_and_its_width_per_token(scenes):
    r = REFERENCE["gpt-3-175b"]
    reading = hover_block(scenes("gpt-3-175b"), "blocks.0.mlp.gelu")
    assert reading.shape == f"t × {r['d_ff']} (tokens × d_ff)"
    assert "activation, not parameters" in reading.params and f"{r['d_ff']:,} values per token" in reading.params
    assert reading.role


def test_deepseek_experts_report_their_real_parameter_count(scenes):
    r = REFERENCE["deepseek-v3"]
    expert = 3 * r["d_model"] * r["moe_expert_d_ff"]  # gate, up, down: hidden × moe_intermediate each
    scene = scenes("deepseek-v3")
    for tensor_id in ("blocks.3.moe.expert.0", "blocks.60.moe.expert.255", "blocks.10.moe.shared.0"):
        reading = hover_block(scene, tensor_id)
        assert count_in(reading.params) == expert, tensor_id
        assert "3 matrices" in reading.shape and "expert_d_ff × d_model" in reading.shape.replace("shared_d_ff",
                                                                                                 "expert_d_ff")
    tree = ComponentTree(scene.layout, scene.spec)
    assert tree.details(tree.node_of("blocks.3.moe.expert.7")).params == expert
    assert tree.params(tree.node_of("blocks.3.moe.experts")) == 256 * expert
    bank = hover_group(scene, "blocks.3.moe.experts")
    assert count_in(bank.params) == 256 * expert and "256 experts" in bank.shape


def test_mixtral_experts_count_their_three_matrices(scenes):
    r = REFERENCE["mixtral-8x7b"]
    reading = hover_block(scenes("mixtral-8x7b"), "blocks.0.moe.expert.3")
    assert count_in(reading.params) == 3 * r["d_model"] * r["moe_expert_d_ff"]


def test_a_group_says_its_role_shape_in_model_units_and_its_parameters(scenes):
    r = REFERENCE["gpt-3-175b"]
    scene = scenes("gpt-3-175b")
    head = 3 * (r["head_dim"] * r["d_model"] + r["head_dim"])  # W_q, W_k, W_v and their biases
    reading = hover_group(scene, "blocks.4.attn.heads")
    assert f"{r['n_heads']} heads × {r['head_dim']}" in reading.shape
    assert count_in(reading.params) == r["n_heads"] * head
    assert reading.role
    one = hover_group(scene, "blocks.4.attn.head.9")
    assert count_in(one.params) == head and "stand-in" in one.note and reading.role != one.role
    mlp = hover_group(scene, "blocks.4.mlp")
    # W_fc and W_proj with their biases, and the LayerNorm (γ, β) the MLP group holds before them
    assert count_in(mlp.params) == 2 * r["d_model"] * r["d_ff"] + r["d_ff"] + r["d_model"] + 2 * r["d_model"]
    assert "12288 → 49152 → 12288" in mlp.shape


@pytest.mark.parametrize("model_id", ["gpt-3-175b", "deepseek-v3", "llama-3-8b", "mamba-2.8b", "rwkv-6-1.6b",
                                      "jamba-v0.1", "whisper-base", "llava-1.5-7b", "vit-b-16", "qwen3-30b-a3b"])
def test_every_kind_of_block_and_group_has_its_own_role_and_a_shape(model_id):
    """One block of each id pattern: a role from the table (not the fallback by kind), a shape, and for a
    weight or bias exactly rows × cols parameters (a tied unembedding: none of its own)."""
    from llmviz.scenes.component_info import KIND_ROLES, info_for, pattern_of

    spec = REGISTRY.get(model_id)
    layout = layout_model(spec)
    info = info_for(layout, spec)
    seen = set()
    for row, tensor_id in enumerate(layout.ids):
        key = pattern_of(tensor_id)
        if key in seen:
            continue
        seen.add(key)
        about = info.block(row)
        assert about.role and about.role not in KIND_ROLES.values(), tensor_id
        assert about.shape and about.params_text, tensor_id
        assert "{" not in about.role + about.shape, tensor_id  # every field filled
        if layout.kind[row] in (KIND_WEIGHT, KIND_BIAS):
            cells = int(layout.rows[row]) * int(layout.cols[row])
            tied = tensor_id == "lm_head.weight" and spec.architecture.unembedding == "tied"
            if tensor_id in ("classifier.weight", "classifier.bias"):  # drawn, but left out of the count
                assert about.params == 0 and "reported apart" in about.params_text
                continue
            assert about.params == (0 if tied else cells), tensor_id
            assert ("no parameters of its own" in about.params_text) if tied else \
                count_in(about.params_text) == cells, tensor_id
    groups = set()
    for g, group_id in enumerate(layout.group_ids):
        key = pattern_of(group_id)
        if key in groups:
            continue
        groups.add(key)
        about = info.group(g)
        assert about.role and "{" not in about.role + about.shape, group_id
        assert count_in(about.params_text) == about.params, group_id


# ---------------------------------------------------------------------------- details panel

@pytest.mark.parametrize("model_id, group_id, units", [
    ("gpt-3-175b", "blocks.0.attn.heads", "96 heads × 128"),
    ("gpt-3-175b", "blocks.0.attn.head.3", "Q, K, V: t × 128 each (tokens × head_dim)"),
    ("deepseek-v3", "blocks.5.moe.experts", "256 experts × 3 matrices of 7168 × 2048"),
    ("deepseek-v3", "blocks.0.attn", "q·k 192 (128 + 64 RoPE)"),
    ("mamba-2.8b", "blocks.0.mamba", "d_inner 5120, d_state 16"),
])
def test_the_details_panel_speaks_in_model_units_never_world_units(model_id, group_id, units):
    spec = REGISTRY.get(model_id)
    layout = layout_model(spec)
    tree = ComponentTree(layout, spec)
    node = tree.node_of(group_id)
    details = tree.details(node)
    text = "\n".join(t for _, t in panels.details_lines(details))
    assert units in details.units and units in text
    assert "box" not in text
    # Not the drawn size either, in the words the panel used to give it ("box 965 × 1065 × 2").
    size = layout.group_size[node.index]
    assert f"{size[0]:.0f} × {size[1]:.0f}" not in text
    assert f"{details.params:,} parameters" in text and details.params == tree.params(node)


def test_the_details_panel_of_a_block_gives_its_role_and_model_units():
    spec = REGISTRY.get("gpt-3-175b")
    tree = ComponentTree(layout_model(spec), spec)
    details = tree.details(tree.node_of("blocks.1.mlp.proj.weight"))
    text = [t for _, t in panels.details_lines(details)]
    assert "shape: 12288 × 49152 (d_model × d_ff)" in text and details.role in text
    assert details.params == 12288 * 49152


# ---------------------------------------------------------------------------- sums

_COMPONENTS = {c.name for spec in REGISTRY for c in spec.architecture.components}


def _category(tensor_id: str) -> str:
    """The models/params.py group a block's parameters belong to, read from its id (this test's own mapping):
    a stack laid out under a component's name ("vision.blocks.3...", "projector.fc1.weight") is that component."""
    if tensor_id.split(".")[0] in _COMPONENTS:
        return tensor_id.split(".")[0]
    parts = tensor_id.split(".")
    if parts[0] == "blocks":
        parts = parts[2:]
    head = parts[0]
    if head in ("ln0", "ln1", "ln2", "ln_cross", "ln_f"):
        return "norms"
    if head == "embed":
        return "positions" if parts[1] == "pos" else "embedding"
    if head == "moe":
        return {"router": "router", "expert": "experts", "shared": "shared_experts"}[parts[1]]
    if head == "components":
        return tensor_id.split(".", 1)[1]
    return {"attn": "attention", "cross_attn": "cross_attention", "mlp": "mlp", "mamba": "ssm",
            "time_mix": "time_mix", "channel_mix": "channel_mix", "lm_head": "unembedding",
            "proj": "projection", "mtp": "mtp"}[head]


@pytest.mark.parametrize("model_id", REGISTRY.ids())
def test_the_components_add_up_to_the_models_totals(model_id):
    """Per model: the blocks' counts plus the few tensors drawn without a block, summed by params.py's groups,
    are params.py's groups; the root of the component tree is the total."""
    from llmviz.scenes.component_info import info_for

    spec = REGISTRY.get(model_id)
    layout = layout_model(spec)
    count = count_params(spec)
    tree = ComponentTree(layout, spec)
    assert tree.params(tree.root) == count.total
    info = info_for(layout, spec)
    sums: dict[str, int] = {}
    for tensor_id, n in zip(layout.ids, info.block_params.tolist()):
        if n:
            sums[_category(tensor_id)] = sums.get(_category(tensor_id), 0) + n
    for item in info.undrawn:
        sums[item.category] = sums.get(item.category, 0) + item.count
    assert sums == count.groups
    # Every layer group holds what its blocks hold, and the layers with the embedding and output are the model.
    top = np.flatnonzero(layout.group_parent == 0)
    assert sum(tree.params(Node(GROUP, int(g))) for g in top) + sum(
        tree.params(Node(BLOCK, int(r))) for r in np.flatnonzero(layout.group == 0)) == count.total
    if model_id in PUBLISHED_TOTAL:
        assert tree.params(tree.root) == pytest.approx(PUBLISHED_TOTAL[model_id], rel=0.01)


def test_the_mtp_module_is_reported_apart_as_params_py_does(scenes):
    scene = scenes("deepseek-v3")
    reading = hover_block(scene, "mtp.0")
    assert count_in(reading.params) == count_params(scene.spec).excluded["mtp"]
    assert "not in the" in reading.params
    assert ComponentTree(scene.layout, scene.spec).params(Node(BLOCK, scene.layout.index("mtp.0"))) == 0


# ---------------------------------------------------------------------------- the View menu

class _MenuImgui:
    """Just enough of imgui for main_menu: every menu opens, and one item (by label) is clicked."""

    def __init__(self, click: str):
        self.click, self.items = click, []

    def begin_main_menu_bar(self):
        return True

    def get_window_size(self):
        return type("Size", (), {"y": 20.0})()

    def begin_menu(self, label, enabled=True):
        self.items.append(("menu", label))
        return True

    def menu_item(self, label, shortcut, selected, enabled=True):
        self.items.append(("item", label))
        return (label == self.click, selected)

    def menu_item_simple(self, label, shortcut="", selected=False, enabled=True):
        self.items.append(("item", label))
        return label == self.click

    def input_text(self, label, text, flags=0):
        return False, text

    def button(self, label):
        return False

    class InputTextFlags_:  # the flags the menus pass
        enter_returns_true = 0

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_the_view_menu_writes_a_frame_report(monkeypatch):
    fake = _MenuImgui("Write frame report")
    monkeypatch.setattr(panels, "imgui", fake)
    choice = panels.main_menu([], "gpt-3-175b", ["overview"], False, "fly", panels.MenuState())
    assert choice.action == "write_report"
    items = [label for kind, label in fake.items if kind == "item"]
    view = items[items.index("Profiler"):]
    # The View menu keeps what it had, with the report beside the quality switch.
    for label in ("Profiler", "Component tree and search", "Next model", "Previous model",
                  "Adaptive quality (holds 60 FPS by lowering detail)", "Write frame report", "Quit"):
        assert label in view, label
    other = _MenuImgui("Quit")
    monkeypatch.setattr(panels, "imgui", other)
    assert panels.main_menu([], "gpt-3-175b", [], False, "fly", panels.MenuState()).action == "quit"
