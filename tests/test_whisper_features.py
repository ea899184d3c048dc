"""Our log-mel features (models/sim/audio_features.py: numpy, stage by stage, and the training's torch batch)
equal transformers' WhisperFeatureExtractor, built from the preprocessor_config.json `llmviz export-hf
whisper-tiny` writes, to 1e-4 on tones, chirps, noise, silence and the shipped speech; the filterbank equals
transformers' mel_filter_bank; each stage is what its name says."""
from __future__ import annotations

import numpy as np
import pytest

from llmviz.models.sim import audio_features as af
from llmviz.models.sim import audio_io
from llmviz.models.sim.speech_samples import SAMPLES, sample_path
from llmviz.models.sim.whisper_model import WhisperTinyConfig

transformers = pytest.importorskip("transformers")
CFG = WhisperTinyConfig()
CHUNK = CFG.chunk_seconds * af.SAMPLE_RATE


@pytest.fixture(scope="module")
def extractor():
    from transformers import WhisperFeatureExtractor

    fields = af.processor_config(CFG.n_mels, CFG.chunk_seconds)
    return WhisperFeatureExtractor(**{k: v for k, v in fields.items() if k != "feature_extractor_type"})


def _signals():
    rng = np.random.default_rng(7)
    t = np.arange(3 * af.SAMPLE_RATE) / af.SAMPLE_RATE
    return {"tone 440 Hz": 0.3 * np.sin(2 * np.pi * 440 * t),
            "two tones": 0.2 * np.sin(2 * np.pi * 150 * t) + 0.05 * np.sin(2 * np.pi * 5000 * t),
            "chirp 100 Hz to 7 kHz": 0.5 * np.sin(2 * np.pi * (100 * t + 1150 * t ** 2)),
            "white noise": 0.1 * rng.standard_normal(t.size),
            "quiet noise, longer than the chunk": 1e-3 * rng.standard_normal(6 * af.SAMPLE_RATE),
            "silence": np.zeros(8000),
            **{name: audio_io.read_audio(str(sample_path(name))).samples for name, *_ in SAMPLES}}


@pytest.mark.parametrize("name", sorted(_signals()))
def test_features_equal_the_extractor(extractor, name):
    wave = _signals()[name].astype(np.float32)
    theirs = extractor(wave, sampling_rate=af.SAMPLE_RATE, return_tensors="np")["input_features"][0]
    ours = af.log_mel_stages(wave, CFG.n_mels, CHUNK).features
    batch = af.log_mel_batch(wave[None], CFG.n_mels, CHUNK)[0].numpy()
    assert ours.shape == theirs.shape == (CFG.n_mels, CFG.n_frames)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(batch, theirs, atol=1e-4, rtol=0)


def test_the_filterbank_is_transformers_slaney_bank():
    from transformers.audio_utils import mel_filter_bank

    theirs = mel_filter_bank(num_frequency_bins=af.N_FFT // 2 + 1, num_mel_filters=CFG.n_mels, min_frequency=0.0,
                             max_frequency=8000.0, sampling_rate=af.SAMPLE_RATE, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(af.mel_filters(CFG.n_mels), theirs, atol=1e-12)


def test_each_stage_is_what_it_says():
    """Frames are 25 ms Hann windows every 10 ms; power is |rfft|^2; the mel stage is the filterbank of it; the
    log is log10; the floor is 8 below the maximum; a mel band's peak lies inside it."""
    wave = _signals()["chirp 100 Hz to 7 kHz"].astype(np.float32)
    st = af.log_mel_stages(wave, CFG.n_mels, CHUNK)
    assert st.frames.shape == (CFG.n_frames, af.N_FFT) and st.samples == wave.size
    padded = np.pad(np.pad(wave, (0, CHUNK - wave.size)).astype(np.float64), 200, mode="reflect")
    k = 37
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    np.testing.assert_allclose(st.frames[k], padded[160 * k:160 * k + 400] * window, atol=1e-12)
    np.testing.assert_allclose(st.power[:, k], np.abs(np.fft.fft(st.frames[k])[:201]) ** 2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(st.log, np.log10(np.maximum(st.mel, 1e-10)))
    assert st.floored.min() == pytest.approx(st.log.max() - 8.0)
    assert st.audio_frames == 300
    low, peak, high = af.mel_band(CFG.n_mels, 40)
    assert low < peak < high and af.mel_filters(CFG.n_mels)[:, 40].max() > 0
