"""whisper-tiny against independent references: transformers' WhisperForConditionalGeneration on the same
weights (our forward's encoder states and logits, 1e-5), the folder `llmviz export-hf` writes (loaded by
transformers with its feature extractor, tokenizer and generation config: the same features, states, logits
and greedy transcript), Whisper's sinusoids, DTW against a brute-force minimum; the shipped clips' transcripts
and timings (monotone, inside the audio); the training code on a few steps (deterministic); every hover rule
recomputing its cells; `llmviz transcribe --json` and `llmviz spectrogram`."""
from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from llmviz.models.sim import audio_io, whisper_model, whisper_trace
from llmviz.models.sim.speech_samples import SAMPLES, sample_path
from llmviz.models.sim.whisper_transcribe import transcribe

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return whisper_model.load_whisper()


@pytest.fixture(scope="module")
def clips():
    return {name: audio_io.read_audio(str(sample_path(name))).samples for name, *_ in SAMPLES}


@pytest.fixture(scope="module")
def results(model, clips):
    return {name: transcribe(model, wave, model.generation_config.alignment_heads) for name, wave in clips.items()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from llmviz.models.export_hf import export

    folder = tmp_path_factory.mktemp("export") / "whisper-tiny"
    export("whisper-tiny", folder)
    return folder


@pytest.fixture(scope="module")
def hf_said(exported, clips):
    """Each shipped clip's transcript by transformers alone: the exported folder's feature extractor, greedy
    generate with its generation config, its tokenizer."""
    from transformers import AutoTokenizer, GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    hf = WhisperForConditionalGeneration.from_pretrained(exported, attn_implementation="eager").eval()
    extractor = WhisperFeatureExtractor.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    gen = GenerationConfig.from_pretrained(exported)
    out = {}
    for name, wave in clips.items():
        feats = extractor(wave, sampling_rate=16000, return_tensors="pt")["input_features"]
        with torch.inference_mode():
            out[name] = tokenizer.decode(hf.generate(feats, generation_config=gen, max_new_tokens=15)[0],
                                         skip_special_tokens=True)
    return out


def test_forward_equals_transformers(model, results):
    r = results["digits-314159.wav"]
    feats = torch.from_numpy(r.stages.features)[None]
    tokens = torch.tensor([r.tokens])
    with torch.inference_mode():
        out = model(input_features=feats, decoder_input_ids=tokens, output_hidden_states=True)
        ours = whisper_trace.forward(model, feats, tokens)
    np.testing.assert_allclose(r.trace["audio.ln_f.out"], out.encoder_last_hidden_state[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(r.trace["logits"], out.logits[0].numpy(), atol=1e-5)
    # training's forward: the fused attention (SDPA) sums in another order, logits of about 10 agree to 1e-4
    np.testing.assert_allclose(ours.numpy(), out.logits.numpy(), atol=1e-4)
    for i, hidden in enumerate(out.encoder_hidden_states[1:-1]):   # each layer's output (the last is before ln_f)
        np.testing.assert_allclose(r.trace[f"audio.blocks.{i}.resid2"], hidden[0].numpy(), atol=1e-5)


def test_positions_are_whispers_sinusoids_and_fixed(model):
    table = model.model.encoder.embed_positions.weight
    assert not table.requires_grad
    np.testing.assert_allclose(table.detach().numpy(), whisper_trace.sinusoids(*table.shape), atol=2e-5)


def test_exported_folder_in_transformers(model, exported, clips, results, hf_said):
    from transformers import AutoTokenizer, GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    hf = WhisperForConditionalGeneration.from_pretrained(exported, attn_implementation="eager").eval()
    extractor = WhisperFeatureExtractor.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    gen = GenerationConfig.from_pretrained(exported)
    assert gen.alignment_heads == model.generation_config.alignment_heads
    assert sum(p.numel() for p in hf.parameters()) == sum(p.numel() for p in model.parameters())
    for name, wave in clips.items():
        r = results[name]
        feats = extractor(wave, sampling_rate=16000, return_tensors="pt")["input_features"]
        np.testing.assert_allclose(feats[0].numpy(), r.stages.features, atol=1e-4)
        feats = torch.from_numpy(r.stages.features)[None]      # the same input for the state comparison
        with torch.inference_mode():
            out = hf(input_features=feats, decoder_input_ids=torch.tensor([r.tokens]))
            said = hf.generate(feats, generation_config=gen, max_new_tokens=15)
        np.testing.assert_allclose(out.encoder_last_hidden_state[0].numpy(), r.trace["audio.ln_f.out"], atol=1e-5)
        np.testing.assert_allclose(out.logits[0].numpy(), r.trace["logits"], atol=1e-5)
        assert tokenizer.decode(said[0], skip_special_tokens=True) == r.text == hf_said[name], name
        assert tokenizer.convert_tokens_to_ids(list(r.text)) == r.tokens[1:-1]


def test_shipped_clips_are_transcribed(hf_said):
    """The four clips (held-out voices and speeds), transcribed by transformers from the exported folder, at the
    model's measured level: 96.4% and 95.3% of the digits of two sets of 300 fresh held-out clips (BENCHMARKS.md,
    stop 31); 15 of these 17 digits when measured (one in seventeen is a 94% level), at least 80% here."""
    from llmviz.models.sim.train_whisper import edit_distance

    edits = sum(edit_distance(digits, hf_said[name]) for name, digits, *_ in SAMPLES)
    assert 1 - edits / sum(len(d) for _, d, *_ in SAMPLES) >= 0.8
    assert hf_said["digit-7.wav"] == "7"


def test_timings_are_monotone_and_inside_the_audio(results):
    for name, r in results.items():
        n = len(r.text)
        assert r.starts.shape == r.ends.shape == (n,)
        seconds = r.stages.samples / 16000
        assert np.all(np.diff(r.starts) >= 0) and np.all(r.ends >= r.starts) and np.all(r.starts[1:] == r.ends[:-1])
        assert r.starts[0] >= 0 and r.ends[-1] <= seconds
        assert len(r.probabilities) == n + 1 and all(0 < p <= 1 for p in r.probabilities)


def test_spoken_digits_are_placed_where_they_were_said(results):
    """digits-314159.wav starts 1/3 s in (speech_samples.make_clip): the first digit cannot end before it."""
    r = results["digits-314159.wav"]
    assert r.ends[0] > 1 / 3 and r.starts[-1] < 3.5


def test_dtw_is_the_cheapest_monotone_path():
    rng = np.random.default_rng(3)
    for n, m in ((1, 5), (3, 4), (4, 7)):
        cost = rng.standard_normal((n, m))
        rows, cols = whisper_trace.dtw(cost)
        assert rows[0] == cols[0] == 0 and rows[-1] == n - 1 and cols[-1] == m - 1
        steps = set(zip(np.diff(rows), np.diff(cols)))
        assert steps <= {(1, 1), (1, 0), (0, 1)}
        best = np.inf                            # brute force: every path of those steps
        for moves in itertools.product(((1, 1), (1, 0), (0, 1)), repeat=n + m):
            i = j = 0
            total = cost[0, 0]
            for di, dj in moves:
                if (i, j) == (n - 1, m - 1):
                    break
                i, j = i + di, j + dj
                if i >= n or j >= m:
                    total = np.inf
                    break
                total += cost[i, j]
            if (i, j) == (n - 1, m - 1):
                best = min(best, total)
        assert cost[rows, cols].sum() == pytest.approx(best)


def test_median_filter_against_a_loop():
    x = np.random.default_rng(0).standard_normal((2, 20))
    padded = np.pad(x, ((0, 0), (3, 3)), mode="reflect")
    loop = np.array([[np.median(padded[r, i:i + 7]) for i in range(20)] for r in range(2)])
    np.testing.assert_allclose(whisper_trace.median_filter(x), loop)


def test_hover_rules_recompute_every_tensor(model, results):
    from llmviz.scenes import dataflow

    r = results["digits-2026.wav"]
    weights = whisper_trace.weights(model)
    assert dataflow.family(r.trace) == "whisper"
    rng = np.random.default_rng(0)
    for tid in r.trace:
        arr = r.trace[tid]
        cells = [(0,) * arr.ndim, tuple(n - 1 for n in arr.shape)] + [tuple(int(rng.integers(n)) for n in arr.shape)
                                                                       for _ in range(2)]
        for cell in cells:
            e = dataflow.explain(tid, cell[0], cell[1] if arr.ndim > 1 else None, r.trace, weights)
            if not e.masked:
                assert e.recomputed == pytest.approx(e.value, rel=1e-4, abs=1e-5), (tid, cell, e.formula)
    mel = dataflow.explain("audio.features", 41, 12, r.trace, weights).formula
    assert "mel bin 12: 447-521 Hz" in mel and "0.397-0.422 s" in mel


def test_training_steps_are_deterministic(clips, monkeypatch):
    from llmviz.models.sim import speech_digits, train_whisper

    monkeypatch.setattr(train_whisper, "HEAD_CLIPS", 4)   # the heads' choice on 4 clips, not 64: seconds

    pool = ([d for _, d, *_ in SAMPLES], [w[5333:][:speech_digits.CLIP_SAMPLES - 6000] for w in clips.values()])
    fine = dataclasses.replace(train_whisper.FINE_TUNE, steps=2)   # both phases
    a, b = (train_whisper.train(steps=2, pool=pool, report=False, log=lambda line: None, fine=fine) for _ in range(2))
    assert whisper_model.safetensors_bytes(a.model, {}) == whisper_model.safetensors_bytes(b.model, {})
    first = train_whisper.train(steps=2, pool=pool, report=False, log=lambda line: None, fine=None)
    assert whisper_model.safetensors_bytes(first.model, {}) != whisper_model.safetensors_bytes(a.model, {})
    assert np.isfinite(a.final_loss) and len(a.alignment_heads) == train_whisper.N_ALIGNMENT_HEADS
    assert a.model.generation_config.alignment_heads == a.alignment_heads


def test_spec_augment_warp_moves_a_tone_as_a_scaled_tone():
    """The warp by 1.1 of a 1 kHz tone's features peaks in the bin a 1.1 kHz tone peaks in (features from the
    extractor, not the warp); with no masks, tilt or warp the features come back unchanged."""
    from llmviz.models.sim.train_whisper import SpecAugment, features_of

    t = np.arange(64000) / 16000
    tone = lambda hz: (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)   # noqa: E731
    feats = features_of(np.stack([tone(1000.0), tone(1100.0)]))
    warped = SpecAugment(bands=0, spans=0, tilt_db=0.0, warp=(1.1, 1.1))(feats[:1], np.random.default_rng(0))
    assert int(warped[0, :, 200].argmax()) == int(feats[1, :, 200].argmax()) != int(feats[0, :, 200].argmax())
    same = SpecAugment(bands=0, spans=0, tilt_db=0.0, warp=(1.0, 1.0))(feats, np.random.default_rng(0))
    np.testing.assert_allclose(same.numpy(), feats.numpy(), atol=1e-6)
    masked = SpecAugment(bands=1, max_bins=10, spans=0, tilt_db=0.0, warp=(1.0, 1.0))(feats, np.random.default_rng(1))
    changed_bins = (masked - feats).abs().amax(dim=2) > 1e-6
    assert int(changed_bins.sum(dim=1).max()) <= 10


def test_guided_attention_penalty():
    from llmviz.models.sim.train_whisper import guide_penalty

    p = guide_penalty(["12"], np.array([[16000, 32000]]), 3, 200).numpy()[0]
    # digit 1 centred at 1.5 s (frame 75), digit 2 at 2.5 s (frame 125); the EOT row is not guided
    assert np.argmin(p[0]) == 74 and np.argmin(p[1]) == 124 and not p[2].any()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "llmviz.scenes.cli.main", *args], capture_output=True, text=True,
                          timeout=300)


def test_transcribe_json(capsys, hf_said):
    from llmviz.scenes.cli.main import main

    assert main(["transcribe", "--model", "whisper-tiny", "--audio", str(sample_path("digits-2026.wav")), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    said = hf_said["digits-2026.wav"]
    assert out["text"] == said and [t["token"] for t in out["tokens"]] == [*said, "<|endoftext|>"]
    assert all(0 <= t["start"] <= t["end"] <= 4 for t in out["tokens"][:-1])


def test_spectrogram_png_and_npz(tmp_path):
    from PIL import Image

    png, npz = tmp_path / "s.png", tmp_path / "s.npz"
    for out in (png, npz):
        done = _cli("spectrogram", "--audio", str(sample_path("digit-7.wav")), "--out", str(out))
        assert done.returncode == 0, done.stderr
    with Image.open(png) as image:
        assert image.size[0] > 800 and image.size[1] > 160
    with np.load(npz) as z:
        assert z["features"].shape == (80, 400) and z["frame_seconds"][1] == pytest.approx(0.01)
        assert z["mel_edges_hz"][-1] == pytest.approx(8000)


def test_the_panel_picture_and_the_chapter_values(model, clips, results):
    """What the worker hands the frame (whisper_live.trace_entries) is what chapter 18 may read, and the panel
    composes its picture from it: waveform, spectrogram, a band per decoder layer and the alignment band."""
    from llmviz.models.sim.trace import ActivationTrace
    from llmviz.scenes.chapters.format import AUDIO_VALUES
    from llmviz.scenes.whisper_live import STAGE_IDS, trace_entries
    from llmviz.scenes.whisper_panels import BAND_H, SPEC_H, WAVE_H, WIDTH, compose

    assert set(STAGE_IDS) == set(AUDIO_VALUES)
    audio = audio_io.read_audio(str(sample_path("digit-7.wav")))
    trace = trace_entries(results["digit-7.wav"], audio, ActivationTrace)
    rgba, bands = compose(trace, 0, None)
    assert bands == model.config.decoder_layers + 1
    assert rgba.shape == (WAVE_H + SPEC_H + bands * (BAND_H + 2), WIDTH, 4) and rgba.dtype == np.uint8
    # the worker's picture of the clip is the one the frame thread would have made
    without = ActivationTrace([(i, trace[i], trace.axes(i)) for i in trace if i != "panel.picture"])
    np.testing.assert_array_equal(compose(without, 0, None)[0], rgba)


def test_the_panel_draws_the_whole_dtw_path_from_its_corners(results):
    """Every point of the DTW path lies on the polyline through the corners the panel keeps."""
    from llmviz.scenes.whisper_panels import SPEC_H, WIDTH, path_corners

    r = results["digits-867530.wav"]
    path = np.stack(r.path)
    frames = r.stages.audio_frames
    xs, ys = path_corners(path, frames)
    assert 2 <= xs.size < path.shape[1]
    rows, cols = path
    px, py = (cols + 0.5) * 2 / frames * WIDTH, SPEC_H - (rows + 0.5) / (rows.max() + 1) * SPEC_H
    for x, y in zip(px, py):
        on = [abs((xs[j + 1] - xs[j]) * (y - ys[j]) - (ys[j + 1] - ys[j]) * (x - xs[j])) < 1e-6
              and min(xs[j], xs[j + 1]) - 1e-9 <= x <= max(xs[j], xs[j + 1]) + 1e-9
              for j in range(xs.size - 1)]
        assert any(on), (x, y)
