"""What training the small models here shares: the optimisation loop (schedule, step, clip, a progress
line) for every one of them, and for the character models on moe_corpus's four domains (mamba-tiny,
mamba2-tiny, rwkv-tiny, jamba-tiny) their recipe, set-up, optimizer groups and held-out loss."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from llmviz.models.sim import moe_corpus

CLIP_NORM = 1.0  # gradient-norm clip of every recipe here
DEFAULT_SEED = 0  # the seed of every character model's shipped weights


class Prefetch:
    """`produce()` called `count` times on a second thread, at most `depth` results ahead of the consumer, handed
    out in order by `next()`: a training step's batch (clips, features, augmentation: numpy and torch, which
    release the GIL in their work) made on the machine's other core while the model steps on this one. One
    producer calling in order makes the same draws as calling `produce` in the loop, so the trained bytes do
    not depend on it. An error in `produce` is raised by the `next()` that would have received its result;
    leaving the `with` block (or `close`) stops the producer."""

    def __init__(self, produce: Callable[[], object], count: int, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce, count), daemon=True, name="prefetch")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce, count: int) -> None:
        try:
            for _ in range(count):
                if not self._put((produce(), None)):
                    return
        except BaseException as error:   # handed to the consumer, which raises it where it waits
            self._put((None, error))

    def next(self):
        item, error = self._queue.get()
        if error is not None:
            raise error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_steps(model, opt, steps: int, lr_at: Callable[[int], float], step_loss, log=print,
              log_every_s: float = 5.0) -> tuple[dict[str, float], float]:
    """Runs `steps` optimizer steps; returns the last step's shown values and the seconds taken.

    ``step_loss(step)`` computes one batch: (the loss to minimise, {name: value} to report, a note for the
    progress line or ""). ``log(line)`` receives a progress line every ``log_every_s`` seconds and after
    the last step, so a long run always shows that it is moving.
    """
    model.train()
    start = last_log = time.perf_counter()
    shown: dict[str, float] = {}
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss, shown, note = step_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        now = time.perf_counter()
        if now - last_log >= log_every_s or step == steps - 1:
            values = "  ".join(f"{name} {value:.4f}" for name, value in shown.items())
            log(f"step {step + 1:5d}/{steps}  {values}{'  ' + note if note else ''}  elapsed {now - start:6.1f}s")
            last_log = now
    seconds = time.perf_counter() - start
    model.eval()
    return shown, seconds


# ---- the character models on the four-domain corpus ------------------------------------------------

def decay_but_A_log(name: str, param) -> bool:
    """Weight decay on matrices, except A_log: the state-spaces/mamba reference marks A_log (and D)
    _no_weight_decay, since decaying A_log drags every state's decay rate towards exp(-1) rather
    than towards zero."""
    return param.dim() >= 2 and not name.endswith("A_log")


@dataclass(frozen=True)
class CorpusRecipe:
    """How a character model is trained on moe_corpus: batches of windows from a corpus drawn with the
    seed, a warm-up-cosine schedule, AdamW with decay where `decays(name, param)` says, and a held-out
    report on windows of a corpus drawn with another seed. The defaults are mamba-tiny's recipe, which
    the other three share so the families are compared on equal terms. A default changed here changes
    the trained bytes of every model that takes it: one model's recipe changes in its own instance."""
    batch_size: int = 16
    context: int = 64               # training window; the recurrent models themselves have no limit
    peak_lr: float = 4e-3
    warmup_steps: int = 60          # or a tenth of a shorter run
    lr_floor: float = 0.1           # the cosine ends at this fraction of the peak
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    decays: Callable = decay_but_A_log
    corpus_chars: int = 100_000     # per domain, as for the MoE models
    eval_seed: int = 4321           # the report's corpus is drawn apart from the training text
    eval_windows: int = 32          # per domain

    def lr(self, step: int, steps: int) -> float:
        # imported here: train_nanogpt imports this module for run_steps
        from llmviz.models.sim.train_nanogpt import warmup_cosine

        return warmup_cosine(step, steps, self.peak_lr, min(self.warmup_steps, max(1, steps // 10)), self.lr_floor)

    def adamw(self, model):
        """AdamW over two groups, the parameters `decays` picks (with weight_decay) and the rest."""
        named = list(model.named_parameters())
        decayed = {name: self.decays(name, p) for name, p in named}
        return torch.optim.AdamW([{"params": [p for n, p in named if decayed[n]], "weight_decay": self.weight_decay},
                                  {"params": [p for n, p in named if not decayed[n]], "weight_decay": 0.0}],
                                 lr=self.peak_lr, betas=self.betas)


@dataclass
class TrainResult:
    model: object                 # the transformers model, trained, in eval mode
    steps: int
    final_loss: float             # cross-entropy of the last batch (nats per char)
    seconds: float
    eval_loss: dict[str, float]   # domain → held-out cross-entropy (nats per char)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Next-character cross-entropy of (B, T, vocab) logits against (B, T) targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def corpus_setup(build_model, recipe: CorpusRecipe, seed: int, steps: int):
    """(model, sampler, optimizer) for a deterministic run: on one machine the same seed gives the same
    weights, since transformers' initialisation draws from torch's global generator, seeded here, the
    batches from the sampler's own seeded generator, and torch runs on one thread."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.set_num_threads(1)  # reproducibility and fairness to the render thread
    torch.manual_seed(seed)
    model = build_model()
    sampler = moe_corpus.WindowSampler(moe_corpus.build_corpus(seed, recipe.corpus_chars), recipe.context, seed + 1)
    return model, sampler, recipe.adamw(model)


def held_out_batches(recipe: CorpusRecipe):
    """(domain, x, y) per domain: recipe.eval_windows windows of a corpus drawn with recipe.eval_seed."""
    corpus = moe_corpus.build_corpus(recipe.eval_seed, chars_per_domain=20_000)
    sampler = moe_corpus.WindowSampler(corpus, recipe.context, recipe.eval_seed)
    for domain in moe_corpus.DOMAINS:
        x, y, _ = sampler.batch(recipe.eval_windows, domain)
        yield domain, x, y


@torch.inference_mode()
def held_out_loss(model, loss, recipe: CorpusRecipe) -> dict[str, float]:
    """Per domain, `loss(model, x, y)` on the held-out windows."""
    return {domain: loss(model, x, y).item() for domain, x, y in held_out_batches(recipe)}


def traced_loss(forward):
    """The training loss of a model computed by its trace module: the next-character cross-entropy of
    `forward(model, x)[0]`, the forward the trace records, over the model's own parameters."""
    def loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(forward(model, x)[0], y)
    return loss


def train_on_corpus(build_model, loss, recipe: CorpusRecipe, seed: int, steps: int, log=print,
                    log_every_s: float = 5.0, report: bool = True) -> TrainResult:
    """Trains a fresh `build_model()` from `seed` for `steps` steps on `loss(model, x, y)`; `log(line)`
    receives a progress line every `log_every_s` seconds; with `report`, the held-out loss per domain."""
    model, sampler, opt = corpus_setup(build_model, recipe, seed, steps)

    def step_loss(step):
        x, y, _ = sampler.batch(recipe.batch_size)
        value = loss(model, x, y)
        return value, {"loss": value.item()}, ""

    shown, seconds = run_steps(model, opt, steps, lambda step: recipe.lr(step, steps), step_loss, log, log_every_s)
    return TrainResult(model, steps, shown["loss"], seconds, held_out_loss(model, loss, recipe) if report else {})


def corpus_trainer(build_model, loss, recipe: CorpusRecipe, default_seed: int, default_steps: int):
    """A training module's `train(seed, steps, log, log_every_s, report)`: train_on_corpus with this
    model, loss and recipe, from `default_seed` for `default_steps` unless told otherwise."""
    def train(seed: int = default_seed, steps: int = default_steps, log=print, log_every_s: float = 5.0,
              report: bool = True) -> TrainResult:
        """Trains from scratch; `log(line)` receives a progress line every `log_every_s` seconds."""
        return train_on_corpus(build_model, loss, recipe, seed, steps, log, log_every_s, report)
    return train
