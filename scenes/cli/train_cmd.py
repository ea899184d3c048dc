"""`llmviz train nano-gpt|moe-4|moe-8|mamba-tiny|mamba2-tiny|rwkv-tiny|jamba-tiny|induction-2l`: reproduces a shipped small model's weights from a seed, headless."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

TRAINABLE = ("nano-gpt", "moe-4", "moe-8", "mamba-tiny", "mamba-copy", "mamba2-tiny", "rwkv-tiny", "jamba-tiny",
             "induction-2l", "vit-tiny", "clip-tiny", "llava-tiny", "whisper-tiny")
MAX_SEED = 2**63 - 1      # torch.manual_seed takes a signed 64-bit seed
MAX_STEPS = 1_000_000     # the shipped recipes take a few thousand
RESERVE_BYTES = 4 * 2**20  # room the weights file needs, checked before training (they are under 2 MB)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a small shipped model from a seed (no display needed)",
                              description="Train a small shipped model deterministically from a seed.")
    p.add_argument("model", help="model to train: " + ", ".join(TRAINABLE))
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the shipped weights' seed)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the shipped recipe)")
    p.add_argument("--out", default=None,
                   help="safetensors file to write (default: the package's assets/weights/MODEL.safetensors)")
    p.add_argument("--record", default=None, metavar="DIR",
                   help="nano-gpt: also keep weight snapshots at log-spaced steps and every step's loss in DIR "
                        "(the shipped one: assets/recordings/nano-gpt)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"llmviz train: error: {message}", file=sys.stderr)
    return 2


def _output_path(args, shipped) -> Path | None:
    """Where the weights go, checked now (writable, room on the disk) so a bad --out costs no training."""
    from llmviz.scenes.cli.common import check_output_path

    if args.out is not None:
        out = args.out
    elif isinstance(shipped, Path):
        out = str(shipped)
    else:  # installed inside a zip, the package's assets are no folder and there is no file to overwrite
        return None
    return Path(check_output_path(out, "--out", suffixes=(".safetensors",), reserve=RESERVE_BYTES))


def _save(save, out: Path) -> str | None:
    """Runs `save()`; the sha256 prefix of the written file, or None after printing the error."""
    try:
        save()
    except OSError as exc:
        print(f"llmviz train: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return hashlib.sha256(out.read_bytes()).hexdigest()[:16]


def run(args) -> int:
    if args.model not in TRAINABLE:
        return _fail(f"unknown model {args.model!r}; trainable: {', '.join(TRAINABLE)}")
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        return _fail(f"--steps must be between 1 and {MAX_STEPS:,}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        return _fail(f"--seed must be between 0 and {MAX_SEED} (2^63-1)")
    if getattr(args, "record", None) is not None and args.model != "nano-gpt":
        return _fail(f"--record is for nano-gpt, not {args.model}")
    from llmviz.scenes.cli.main import CliError

    try:
        if args.model == "nano-gpt":
            return _run_nanogpt(args)
        if args.model in TRANSFORMERS_MODELS:
            return _run_transformers_model(args)
        return _run_moe(args)
    except CliError as exc:
        return _fail(str(exc).removeprefix("llmviz: "))
    except FileNotFoundError as exc:  # a program a trainer runs is missing (espeak-ng for whisper-tiny)
        return _fail(str(exc))


def _run_nanogpt(args) -> int:
    # torch loads here, not at import, so `llmviz --help` and other commands stay fast.
    from llmviz.models.sim import sort_task, train_nanogpt
    from llmviz.models.sim.nanogpt import save_safetensors, shipped_weights_path

    out = _output_path(args, shipped_weights_path())
    if out is None:
        return _fail("the package's assets are not a folder; pass --out PATH")
    seed = train_nanogpt.DEFAULT_SEED if args.seed is None else args.seed
    steps = train_nanogpt.DEFAULT_STEPS if args.steps is None else args.steps
    recorder = _recorder(args.record, steps)
    print(f"training nano-gpt (sort task) seed {seed}, {steps} steps, batch {train_nanogpt.BATCH_SIZE}, "
          f"1 torch thread" + (f", recording {len(recorder.wanted)} snapshots" if recorder else ""), flush=True)
    result = train_nanogpt.train(seed=seed, steps=steps, log=lambda line: print(line, flush=True), record=recorder)
    digest = _save(lambda: save_safetensors(result.model, out, {"seed": seed, "steps": steps}), out)
    if digest is None:
        return 1
    if recorder is not None:
        try:
            files = recorder.write(args.record, {"seed": seed, "steps": steps})
        except OSError as exc:
            print(f"llmviz train: error: cannot write {args.record}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"recorded {len(files) - 1} snapshots and {steps} losses in {args.record} "
              f"({sum(f.stat().st_size for f in files):,} bytes)")
    _, held = sort_task.split_inputs()
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}")
    print(f"held-out accuracy: {100 * result.held_out_accuracy:.1f}% of {train_nanogpt.EVAL_SAMPLES} random "
          f"held-out inputs (drawn from {len(held)} inputs never trained on), greedy decoding")
    print(f"all {len(sort_task.all_inputs())} inputs: {100 * result.all_inputs_accuracy:.1f}% sorted exactly")
    print(f"saved {out} (sha256 {digest}...)")
    return 0


def _recorder(folder, steps: int):
    """A Recorder for `--record DIR`, the folder checked first (a file there, or no permission, costs no training)."""
    if folder is None:
        return None
    from llmviz.models.sim.nanogpt_record import Recorder
    from llmviz.scenes.cli.main import CliError

    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise CliError(f"--record {folder}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--record {folder}: cannot make the folder: {exc.strerror or exc}") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise CliError(f"--record {folder}: not a writable folder")
    return Recorder(steps)


def _run_moe(args) -> int:
    from llmviz.models.sim import train_moe
    from llmviz.models.sim.moe_model import save_safetensors, shipped_weights_path, variant_config

    out = _output_path(args, shipped_weights_path(args.model))
    if out is None:
        return _fail("the package's assets are not a folder; pass --out PATH")
    seed = train_moe.DEFAULT_SEED if args.seed is None else args.seed
    steps = train_moe.DEFAULT_STEPS if args.steps is None else args.steps
    cfg = variant_config(args.model)
    print(f"training {args.model} ({cfg.n_experts} experts, top-{cfg.top_k}, mixed corpus) seed {seed}, "
          f"{steps} steps, batch {train_moe.BATCH_SIZE}, aux loss coefficient {train_moe.AUX_LOSS_COEF}, "
          f"1 torch thread", flush=True)
    result = train_moe.train(args.model, seed=seed, steps=steps, log=lambda line: print(line, flush=True))
    digest = _save(lambda: save_safetensors(result.model, args.model, out, {"seed": seed, "steps": steps}), out)
    if digest is None:
        return 1
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}, "
          f"load-balancing loss {result.final_aux:.4g} (uniform routing = {cfg.top_k})")
    print("held-out loss (nats/char): " + ", ".join(f"{d} {v:.3f}" for d, v in result.eval_loss.items()))
    for line in train_moe.format_report(result.top1_share):
        print(line)
    print(f"saved {out} (sha256 {digest}...)")
    return 0


def _routing_lines(result, config) -> list[str]:
    """A mixture of experts' balance and top-1 shares after training (jamba-tiny's MoE layers)."""
    from llmviz.models.sim.train_moe import format_report

    return [f"load-balancing loss {result.final_aux:.4g} (uniform routing = {config.top_k})",
            *format_report(result.top1_share)]


def _induction_lines(result, config) -> list[str]:
    """induction-2l's recurring-span accuracy at its training length and beyond."""
    from llmviz.models.sim.train_induction import report_lines

    return report_lines(result, config)


def _vit_lines(result, config) -> list[str]:
    """vit-tiny's accuracy on fresh pictures."""
    from llmviz.models.sim.train_vit import report_lines

    return report_lines(result, config)


def _clip_lines(result, config) -> list[str]:
    """clip-tiny's zero-shot accuracy on fresh pictures."""
    from llmviz.models.sim.train_clip import report_lines

    return report_lines(result, config)


def _llava_lines(result, config) -> list[str]:
    """llava-tiny's answers on fresh pictures, per question."""
    from llmviz.models.sim.train_llava import report_lines

    return report_lines(result, config)


def _whisper_lines(result, config) -> list[str]:
    """whisper-tiny's digit accuracy on held-out voices and speeds, and its alignment heads."""
    from llmviz.models.sim.train_whisper import report_lines

    return report_lines(result, config)


# The small text models built as transformers architectures: (training module, model module, class,
# what the banner says of the config, extra lines after training or None). Each model module has
# save_safetensors and shipped_weights_path; each training module DEFAULT_SEED, DEFAULT_STEPS,
# BATCH_SIZE, CONTEXT and train(seed, steps, log).
TRANSFORMERS_MODELS = {
    "mamba-tiny": ("train_mamba", "mamba_model", "MambaForCausalLM",
                   lambda c: f"{c.n_layers} Mamba layers, d_model {c.d_model}, d_state {c.d_state}, mixed corpus", None),
    "mamba2-tiny": ("train_mamba2", "mamba2_model", "Mamba2ForCausalLM",
                    lambda c: f"{c.n_layers} Mamba-2 layers, d_model {c.d_model}, {c.n_heads} heads of "
                              f"{c.head_dim}, d_state {c.d_state}, mixed corpus", None),
    "rwkv-tiny": ("train_rwkv", "rwkv_model", "RwkvForCausalLM",
                  lambda c: f"{c.n_layers} RWKV-4 layers, d_model {c.d_model}, d_ff {c.d_ff}, mixed corpus", None),
    "mamba-copy": ("train_copy", "train_copy", "MambaForCausalLM",
                   lambda c: f"mamba-tiny's {c.n_layers} Mamba layers, the selective-copying task",
                   lambda result, config: [f"held-out exact match {100 * result.accuracy:.1f}%"]),
    "jamba-tiny": ("train_jamba", "jamba_model", "JambaForCausalLM",
                   lambda c: f"{c.n_layers} layers: {', '.join(c.layer_kinds())}; {c.n_experts} experts, "
                             f"top-{c.top_k}, mixed corpus", _routing_lines),
    "induction-2l": ("train_induction", "induction_model", "SmolLM3ForCausalLM",
                     lambda c: f"{c.n_layers} attention layers, d_model {c.d_model}, {c.n_heads} heads; layer 0 RoPE "
                               f"in a {c.window}-token window, layer 1 NoPE; recurring spans of pseudo-words",
                     _induction_lines),
    "vit-tiny": ("train_vit", "vit_model", "ViTForImageClassification",
                 lambda c: f"{c.n_layers} encoder layers, d_model {c.d_model}, {c.n_heads} heads, {c.grid} x {c.grid} "
                           f"patches of {c.patch_size} px + [CLS], generated shapes", _vit_lines),
    "clip-tiny": ("train_clip", "clip_model", "CLIPModel",
                  lambda c: f"vision {c.vision_layers} layers x {c.vision_width}, {c.grid} x {c.grid} patches of "
                            f"{c.patch_size} px + [CLS] from vit-tiny's encoder; text {c.text_layers} layers x "
                            f"{c.text_width}, "
                            f"{c.vocab_size} words; shared space {c.projection_dim}; generated shapes and captions",
                  _clip_lines),
    "llava-tiny": ("train_llava", "llava_model", "LlavaForConditionalGeneration",
                   lambda c: f"CLIP tower {c.vision_layers} layers on {c.grid} x {c.grid} patches from clip-tiny's "
                             f"image tower (frozen), 2-layer projector, Llama {c.n_layers} layers d_model {c.d_model}, "
                             f"{c.vocab_size} words", _llava_lines),
    "whisper-tiny": ("train_whisper", "whisper_model", "WhisperForConditionalGeneration",
                     lambda c: f"{c.encoder_layers} encoder + {c.decoder_layers} decoder layers, d_model {c.d_model}, "
                               f"{c.n_heads} heads, {c.n_mels} mel bins over {c.chunk_seconds} s; spoken digits "
                               "synthesised with espeak-ng", _whisper_lines),
}


def _run_transformers_model(args) -> int:
    train_name, model_name, class_name, describe, report = TRANSFORMERS_MODELS[args.model]
    trainer = importlib.import_module(f"llmviz.models.sim.{train_name}")
    module = importlib.import_module(f"llmviz.models.sim.{model_name}")
    out = _output_path(args, module.shipped_weights_path())
    if out is None:
        return _fail("the package's assets are not a folder; pass --out PATH")
    if importlib.util.find_spec("transformers") is None:
        return _fail(f"{args.model} is a transformers {class_name}; install transformers (pip install 'llmviz[dev]')")
    seed = trainer.DEFAULT_SEED if args.seed is None else args.seed
    steps = trainer.DEFAULT_STEPS if args.steps is None else args.steps
    config = next(v for k, v in vars(module).items() if k.endswith("TinyConfig"))()
    # a batch is windows of characters, or (BATCH_WHAT) what an image model's trainer says it is
    batch = getattr(trainer, "BATCH_WHAT", None) or f"{trainer.BATCH_SIZE} x {trainer.CONTEXT} characters"
    print(f"training {args.model} ({describe(config)}) seed {seed}, {steps} steps, batch {batch}, 1 torch thread",
          flush=True)
    result = trainer.train(seed=seed, steps=steps, log=lambda line: print(line, flush=True))
    digest = _save(lambda: module.save_safetensors(result.model, out, {"seed": seed, "steps": steps}), out)
    if digest is None:
        return 1
    print(f"trained in {result.seconds:.1f}s, final loss {result.final_loss:.4g}")
    if result.eval_loss:
        print("held-out loss (nats/char): " + ", ".join(f"{d} {v:.3f}" for d, v in result.eval_loss.items()))
    for line in report(result, config) if report else ():
        print(line)
    print(f"saved {out} (sha256 {digest}...)")
    return 0
