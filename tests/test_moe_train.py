"""MoE training for a few steps: deterministic, reports per-domain routing, saves loadable weights."""
import argparse

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
torch.set_num_threads(1)

from llmviz.models.sim import moe_corpus, train_moe  # noqa: E402
from llmviz.models.sim.moe_model import load_moe  # noqa: E402
from llmviz.scenes.cli import train_cmd  # noqa: E402


def cli(*argv):
    parser = argparse.ArgumentParser(prog="llmviz")
    train_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_training_is_deterministic_from_the_seed():
    run = lambda seed: train_moe.train("moe-4", seed=seed, steps=3, log=lambda line: None,  # noqa: E731
                                       report=False).model.state_dict()
    a, b, c = run(5), run(5), run(6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_routing_report_shares_sum_to_one():
    torch.manual_seed(0)
    result = train_moe.train("moe-8", seed=1, steps=2, log=lambda line: None)
    assert set(result.eval_loss) == set(moe_corpus.DOMAINS)
    assert len(result.top1_share) == 2
    for table in result.top1_share:
        for row in table.values():
            assert len(row) == 8 and abs(sum(row) - 1) < 1e-6
    lines = train_moe.format_report(result.top1_share)
    assert any(line.strip().startswith("math") for line in lines)


def test_cli_trains_a_few_steps_and_saves(capsys, tmp_path):
    out = tmp_path / "m.safetensors"
    assert cli("train", "moe-4", "--seed", "2", "--steps", "3", "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "training moe-4 (4 experts, top-2" in text and "step     3/3" in text
    assert "whose top-1 expert is" in text and f"saved {out}" in text
    model = load_moe("moe-4", out)
    assert model.cfg.n_experts == 4
    trace = model.trace(moe_corpus.encode("x = [1, 2]\n"))
    assert "blocks.1.moe.expert.3.out" in trace


def test_cli_rejects_unknown_model(capsys):
    assert cli("train", "moe-3") == 2
    assert "trainable: nano-gpt, moe-4, moe-8" in capsys.readouterr().err
