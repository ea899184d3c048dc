"""whisper-tiny's listening in 3D (scenes/whisper_alignment3d.py): every head's strip beside the spectrogram
holds transformers' cross-attention of that head (output_attentions on the same weights and tokens), each
encoder frame level with the two spectrogram rows it was made from; the alignment heads are the framed ones;
the waveform's boxes span each 10 ms frame's samples as read from the WAV by the standard library; the digits'
spans are the transcript's DTW times; hovering a strip cell, a waveform frame or a span reads those numbers;
a new clip's writes are spread over frames (scenes/whisper_uploads.py) and all of them arrive."""
import wave

import numpy as np
import pytest

from llmviz.engine.runtime import Engine
from llmviz.scenes.model_paths import preset_camera

SIZE = (640, 360)
CLIP = "digits-314159.wav"
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def whisper():
    headless = pytest.importorskip("llmviz.engine.render.headless")
    from llmviz.scenes.registry import build_scene
    from llmviz.scenes.whisper_live import sample_path

    renderer = headless.headless_renderer(SIZE)
    scene = build_scene("whisper-tiny", renderer)
    try:
        assert scene.wait_for_values(300), scene.live.error
        live = scene.live
        live.set_audio_path(str(sample_path(CLIP)))
        assert live.wait(300), live.error
        live.update(0.0)
        camera = preset_camera(scene.presets["listening"], SIZE, scene.model.layout)
        frame = Engine(scene.world, camera, renderer).frame(0.0)
        yield scene, live, renderer, frame
    finally:
        scene.close()
        renderer.release()


def _transformers_cross(live):
    """transformers' cross-attentions (layers, heads, tokens, frames) for the trace's tokens on its features."""
    from llmviz.models.sim import whisper_model

    model = whisper_model.load_whisper().eval()
    features = torch.from_numpy(np.asarray(live.trace["audio.features"]).T[None].copy())
    tokens = torch.tensor(np.asarray(live.trace["tokens"]).astype(np.int64)[None])
    with torch.no_grad():
        out = model(input_features=features, decoder_input_ids=tokens, output_attentions=True)
    return np.stack([a[0].numpy() for a in out.cross_attentions])


def _wav_samples():
    from llmviz.models.sim.speech_samples import sample_path

    with wave.open(str(sample_path(CLIP)), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float64) / 32768.0


def test_each_strip_is_transformers_cross_attention(whisper):
    scene, live, renderer, _ = whisper
    ov = live.listening
    cross = _transformers_cross(live)
    atlas = renderer.read_data()
    n_tokens = cross.shape[2]
    assert len(ov.keys) == cross.shape[0] * cross.shape[1]
    for n, (layer, head) in enumerate(ov.keys):
        x, y = ov.origins[n]
        drawn = atlas[y:y + ov.sources, x:x + ov.n_cols]
        np.testing.assert_allclose(drawn[:, :n_tokens], cross[layer, head].T, atol=1e-5)
        assert np.isnan(drawn[:, n_tokens:]).all()          # no token there
        reading = ov.reading(live, int(ov.strip_slots[n]), (37, 2))
        assert reading.value == pytest.approx(cross[layer, head, 2, 37], abs=1e-5)
        assert "0.74-0.76 s" in reading.indices             # frame 37 of 20 ms
    # the hover lights the cell it read in the softmax block (tokens x frames), not the strip's (frame, token)
    from llmviz.scenes.hover import SourceHighlight

    lit = SourceHighlight(renderer, scene.model).show(ov.reading(live, int(ov.strip_slots[0]), (150, 6)))
    assert lit >= 1
    assert SourceHighlight(renderer, scene.model).show(ov.reading(live, int(ov.strip_slots[-1]), (150, 6))) >= 0


def test_strips_follow_the_spectrograms_time_axis(whisper):
    scene, live, _, _ = whisper
    ov, layout = live.listening, scene.model.layout
    feat = layout.index("audio.features")
    top = layout.center[feat][1] + layout.size[feat][1] / 2
    row = layout.size[feat][1] / layout.rows[feat]          # one 10 ms log-mel frame
    centres = scene.world["transform"]["position"][ov.strip_slots]
    sizes = scene.world["transform"]["scale"][ov.strip_slots]
    np.testing.assert_allclose(centres[:, 1] + sizes[:, 1] / 2, top, atol=1e-4)        # frame 0 level with row 0
    np.testing.assert_allclose(sizes[:, 1] / ov.sources, 2 * row, rtol=1e-5)            # a frame is two rows
    assert (centres[:, 0] + sizes[:, 0] / 2 < layout.center[feat][0] - layout.size[feat][0] / 2).all()


def test_the_alignment_heads_are_framed(whisper):
    scene, live, _, _ = whisper
    ov = live.listening
    heads = [tuple(int(v) for v in h) for h in np.asarray(live.trace["alignment.heads"])]
    assert sorted(ov.heads) == sorted(heads)
    frames = scene.world["transform"]["position"][scene.world.slots(ov.frames_ids)]
    framed = sorted(ov.keys[int(np.argmin(np.abs(ov.lefts[:-1] + ov.strip_w / 2 - x)))] for x in frames[:, 0])
    assert framed == sorted(heads)
    assert "alignment head" in ov.reading(live, int(ov.strip_slots[ov.keys.index(heads[0])]), (10, 1)).label


def test_the_waveform_boxes_span_each_frames_samples(whisper):
    scene, live, _, _ = whisper
    ov = live.listening
    samples = _wav_samples()
    peak = np.abs(samples).max()
    pos = scene.world["transform"]["position"][ov.wave_slots]
    scale = scene.world["transform"]["scale"][ov.wave_slots]
    half = 36.0 / 2 * 0.95
    for f in (0, 57, 120, 250, 399):
        chunk = samples[f * 160:(f + 1) * 160]
        lo, hi = (pos[f, 0] - ov.wave_x - scale[f, 0] / 2) / half, (pos[f, 0] - ov.wave_x + scale[f, 0] / 2) / half
        if hi - lo > 0.01:
            assert lo == pytest.approx(chunk.min() / peak, abs=2e-3) and hi == pytest.approx(chunk.max() / peak, abs=2e-3)
    reading = ov.reading(live, int(ov.wave_slots[120]), None)
    assert reading.value == pytest.approx(samples[19200:19360].max(), abs=1e-4)


def test_the_spans_are_the_transcripts_times(whisper):
    scene, live, _, _ = whisper
    ov = live.listening
    starts, ends = np.asarray(live.trace["timing.starts"]), np.asarray(live.trace["timing.ends"])
    assert len(starts) == len(live.transcript)
    pos = scene.world["transform"]["position"][ov.span_slots[:len(starts)]]
    scale = scene.world["transform"]["scale"][ov.span_slots[:len(starts)]]
    np.testing.assert_allclose(ov.top - (pos[:, 1] + scale[:, 1] / 2), starts / 0.01 * ov.row_h, atol=1e-3)
    reading = ov.reading(live, int(ov.span_slots[0]), None)
    assert reading.label == f"digit 1: '{live.transcript[0]}'" and f"{starts[0]:.2f}-{ends[0]:.2f} s" == reading.indices
    rows, cols = np.asarray(live.trace["timing.path"])
    hovered = ov.reading(live, int(ov.strip_slots[-1]), (int(cols[5]), int(rows[5])))
    assert "on the DTW path" in hovered.note


def test_a_new_clips_writes_are_spread_over_frames(whisper):
    """With no time to spare in a frame, each frame writes one batch: the clip arrives over several frames,
    and once the queue is empty the blocks hold the new trace."""
    import time

    from llmviz.scenes.whisper_live import sample_path
    from llmviz.scenes.whisper_uploads import BATCH

    scene, live, renderer, _ = whisper
    live.writes.budget_s = 0.0
    try:
        live.set_audio_path(str(sample_path("digits-2026.wav")))
        deadline = time.monotonic() + 300
        while live.busy and time.monotonic() < deadline:
            live.update(0.0)
            time.sleep(0.01)
        queued = len(live.writes)
        assert queued > BATCH                    # the frame that received the clip wrote one batch of it
        frames = 0
        while len(live.writes) and frames < 1000:
            live.update(0.0)
            frames += 1
        assert frames >= queued // BATCH and not len(live.writes)
    finally:
        live.writes.budget_s = 0.002
    atlas = renderer.read_data()
    x, y, cols, rows = scene.model.regions[scene.model.layout.index("audio.features")]
    np.testing.assert_allclose(atlas[y:y + rows, x:x + cols], np.asarray(live.trace["audio.features"]), atol=1e-6)
