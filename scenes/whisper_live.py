"""whisper-tiny live: a sound file in, its log-mel stages, the encoder, the decoder generating the transcript
token by token, and where in the clip each token came from.

The model runs on the session's worker (scenes/worker_session.py); the file events, samples and autoplay
are scenes/file_session.py's: `set_audio_path` returns at once; the
worker reads the file (bounded, models/sim/audio_io.py), computes every feature stage, decodes greedily,
traces every intermediate and times each token from the alignment heads (models/sim/whisper_transcribe.py),
and adds what the panel draws (scenes/whisper_panels.py) under STAGE_IDS. `update(dt)` once per frame
collects what finished and writes it to the blocks: the encoder at once, then the decoder's rows one token
every REVEAL_INTERVAL seconds (the decoder is causal, so row k of the whole transcript's pass is what the
pass over the first k + 1 tokens computed: the scene shows generation as it happened). With ``autoplay``
(the benchmark) the next sample clip is transcribed every AUTOPLAY_INTERVAL seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from llmviz.scenes.file_session import FileSession
from llmviz.scenes.worker_session import _LOADING, WEIGHTS_REQUEST

WHAT_IT_IS = "a small model trained here on spoken digits synthesised with espeak-ng"
SAMPLE_CLIPS = ("digits-314159.wav", "digits-2026.wav", "digits-867530.wav", "digit-7.wav", "digits-314159.flac")
DEFAULT_CLIP = SAMPLE_CLIPS[0]
REVEAL_INTERVAL = 0.25
ENCODER_PREFIX = "audio."
# What the worker adds beside the layout's ids (numbers the panel and the chapter read).
WAVE_ID, POWER_ID, MEL_ID, LOG_ID, FLOOR_ID = "input.wave", "stage.power", "stage.mel", "stage.log", "stage.floored"
STARTS_ID, ENDS_ID, PATH_ID, PROBS_ID, HEADS_ID, INFO_ID = ("timing.starts", "timing.ends", "timing.path",
                                                            "token.probabilities", "alignment.heads", "clip.info")
# made on the worker for the frame thread: the panel's clip picture, the matrix the DTW ran over
PICTURE_ID, ALIGNMENT_ID = "panel.picture", "timing.alignment"
STAGE_IDS = (WAVE_ID, POWER_ID, MEL_ID, LOG_ID, FLOOR_ID, STARTS_ID, ENDS_ID, PATH_ID, PROBS_ID, HEADS_ID, INFO_ID,
             PICTURE_ID, ALIGNMENT_ID)


@dataclass(frozen=True)
class CrossChoice:
    """What the panel draws over the spectrogram: the decoder row (0: SOT, k: after the k-th digit) whose
    cross-attention is shown per layer, and a head (None: the heads' mean)."""
    token: int = 1
    head: int | None = None


def sample_path(name: str):
    from llmviz.models.sim.speech_samples import sample_path as shipped

    return shipped(name)


def _whisper_compute():
    """Worker-side compute: loads whisper-tiny on the worker (torch is imported there, not on the frame thread)."""
    def make():
        import torch

        from llmviz.models.sim import audio_io, whisper_model, whisper_trace
        from llmviz.models.sim.trace import ActivationTrace
        from llmviz.models.sim.whisper_transcribe import transcribe

        torch.set_num_threads(1)
        with _LOADING:
            model = whisper_model.load_whisper()
        heads = model.generation_config.alignment_heads

        def compute(request):
            if request == WEIGHTS_REQUEST:
                return whisper_trace.weights(model)
            kind, value = request
            audio = audio_io.read_audio(value) if kind == "path" else audio_io.Audio(np.asarray(value, np.float32),
                                                                                      16000, 1, "samples")
            return trace_entries(transcribe(model, audio.samples, heads), audio, ActivationTrace)

        return compute

    return make


def trace_entries(result, audio, trace_class):
    """The transcript's trace with the stages, timings and probabilities beside it (STAGE_IDS)."""
    from llmviz.models.sim.whisper_trace import alignment_matrix
    from llmviz.scenes.whisper_picture import SPEC_H, WAVE_H, WIDTH, clip_picture

    st = result.stages
    frames = st.audio_frames
    entries = [(i, result.trace[i], result.trace.axes(i)) for i in result.trace]
    picture = clip_picture(result.trace["audio.features"], frames, st.waveform[:st.samples], WIDTH, WAVE_H, SPEC_H)
    entries += [(PICTURE_ID, picture, ("y", "x", "rgb")),
                (ALIGNMENT_ID, alignment_matrix(result.trace, result.heads, frames).astype(np.float32), ("k", "s"))]
    entries += [(WAVE_ID, st.waveform[:st.samples], ("n",)), (POWER_ID, st.power[:, :frames].astype(np.float32), ("f", "a")),
                (MEL_ID, st.mel[:, :frames].astype(np.float32), ("m", "a")),
                (LOG_ID, st.log[:, :frames].astype(np.float32), ("m", "a")),
                (FLOOR_ID, st.floored[:, :frames].astype(np.float32), ("m", "a")),
                (STARTS_ID, np.asarray(result.starts, np.float32), ("k",)), (ENDS_ID, np.asarray(result.ends, np.float32), ("k",)),
                (PATH_ID, np.stack(result.path).astype(np.int32), ("i", "n")),
                (PROBS_ID, np.asarray(result.probabilities, np.float32), ("k",)),
                (HEADS_ID, np.asarray(result.heads, np.int32), ("k", "i")),
                (INFO_ID, np.array([audio.seconds, audio.source_rate, audio.channels, float(result.clipped),
                                    sum(result.seconds.values())], np.float64), ("i",))]
    return trace_class(entries)


class LiveWhisper(FileSession):
    """A clip in, transcript and trace out. ``scene`` and ``renderer`` may be None (a benchmark runs the model
    alone)."""

    kind = "audio"
    about = WHAT_IT_IS
    samples = SAMPLE_CLIPS

    @staticmethod
    def sample_path(name: str) -> str:
        return str(sample_path(name))

    def __init__(self, scene, renderer, audio_path=None, autoplay: bool = False, data=None):
        """`data`: where the 3D strips' atlas regions are reserved (the loader's DataStaging for a scene built
        on a worker; the renderer by default)."""
        from llmviz.scenes.whisper_uploads import PacedWrites

        self.scene, self.renderer = scene, renderer
        self.writes = PacedWrites(scene, renderer)
        self.listening = None
        if scene is not None and (data or renderer) is not None:
            from llmviz.scenes.whisper_alignment3d import WhisperAlignment3D

            arch, layout = scene.spec.architecture, scene.layout
            self.listening = WhisperAlignment3D(scene, data or renderer, arch.n_layers, arch.n_heads,
                                                int(layout.rows[layout.index("tokens")]))
        self.choice = CrossChoice()
        self.player = None         # scenes/whisper_playback.ClipPlayer, made on the first Play
        self.revealed = 0          # decoder rows on the blocks so far
        self._since_reveal = 0.0
        self._start_files(scene, _whisper_compute(), autoplay)
        self.set_audio_path(self.sample_path(DEFAULT_CLIP) if audio_path is None else audio_path)

    # ------------------------------------------------------------------ events
    def set_audio_path(self, path: str) -> None:
        """Transcribe the file at `path`; read on the worker, a bad file becomes `error`."""
        self.open_path(path)

    def set_audio(self, samples: np.ndarray, source: str = "samples") -> None:
        """Transcribe 16 kHz mono samples already decoded (render --audio reads the file first)."""
        self.open_value("samples", np.asarray(samples, np.float32), source)

    def choose(self, **changes) -> None:
        self.choice = replace(self.choice, **changes)

    def play_clip(self) -> None:
        """Play the clip as the model heard it (16 kHz mono), where a sound device exists; `player.status`
        says what happened in one line."""
        if self.player is None:
            from llmviz.scenes.whisper_playback import ClipPlayer

            self.player = ClipPlayer()
        if self.trace is None:
            self.player.status = "nothing to play yet: the clip is still being read"
            return
        self.player.play(self.trace[WAVE_ID])

    # ------------------------------------------------------------------ what the panel reads
    @property
    def transcript(self) -> str:
        return transcript_text(self.trace) if self.trace is not None else ""

    @property
    def n_tokens(self) -> int:
        return int(self.trace["tokens"].shape[0]) if self.trace is not None else 0

    # ------------------------------------------------------------------ per frame
    def update(self, dt: float) -> bool:
        changed = self.poll()
        if self.trace is not None and self.revealed < self.n_tokens:
            self._since_reveal += dt
            if self._since_reveal >= REVEAL_INTERVAL or self.renderer is None:
                self._since_reveal = 0.0
                self.revealed = self.n_tokens if self.renderer is None else self.revealed + 1
                self._show_decoder()
                changed = True
        self._autoplay(dt)
        self.writes.flush()
        if self.listening is not None:
            self.listening.update(self.renderer, self)
        if changed:
            self.values_version += 1
        return changed

    def wait(self, timeout: float = 30.0) -> bool:
        """Headless: the weights and the whole transcript on the blocks (every decoder row revealed)."""
        ok = super().wait(timeout)
        if self.trace is not None:
            self.revealed = self.n_tokens
            self._show_decoder()
        self.writes.flush(everything=True)
        if self.listening is not None:
            self.listening.update(self.renderer, self)
        return ok

    def reading_at(self, slot: int, cell):
        """The hover reading of the 3D strips, waveform and digit spans (None elsewhere)."""
        return self.listening.reading(self, slot, cell) if self.listening is not None else None

    def _on_weights(self) -> None:
        if self.renderer is not None:
            self.scene.write_values(self.renderer, self.weights)
        self.values_version += 1

    def _on_trace(self, result) -> None:
        self.tick_seconds.append(result.seconds)
        self.revealed = 0
        self._since_reveal = REVEAL_INTERVAL     # the first row at the next frame
        if self.renderer is not None:
            tr = self.trace
            self.writes.put({i: tr[i] for i in tr if i.startswith(ENCODER_PREFIX)})   # over the next frames
            self._show_decoder()
        self.values_version += 1

    def _show_decoder(self) -> None:
        """The decoder's blocks with rows past `revealed` empty (NaN): the tokens not generated yet."""
        if self.renderer is None or self.trace is None:
            return
        tr, k = self.trace, self.revealed
        shown = {}
        for i in tr:
            if i.startswith(ENCODER_PREFIX) or i in STAGE_IDS:
                continue
            a = np.array(tr[i], np.float32)
            a[k:] = np.nan
            if a.ndim == 2 and a.shape[0] == a.shape[1] == tr["tokens"].shape[0]:
                a[:, k:] = np.nan        # self-attention: the keys not there yet
            shown[i] = a
        self.writes.put(shown)


# ---- what the panel and the chapter read ---------------------------------------------------------

def transcript_text(trace) -> str:
    from llmviz.models.sim.whisper_config import decode

    return decode(np.asarray(trace["tokens"]).astype(int).tolist())


def token_labels(trace) -> list[str]:
    from llmviz.models.sim.whisper_config import VOCAB

    short = {"<|startoftranscript|>": "SOT", "<|endoftext|>": "EOT"}
    return [short.get(VOCAB[int(t)], VOCAB[int(t)]) for t in np.asarray(trace["tokens"])]


def cross_rows(trace, token: int, head: int | None) -> list[np.ndarray]:
    """Per decoder layer, row `token`'s cross-attention over the encoder frames (one head or the mean)."""
    rows, layer = [], 0
    while f"blocks.{layer}.cross_attn.head.0.softmax" in trace:
        n = 0
        while f"blocks.{layer}.cross_attn.head.{n}.softmax" in trace:
            n += 1
        heads = range(n) if head is None else [head]
        rows.append(np.mean([np.asarray(trace[f"blocks.{layer}.cross_attn.head.{h}.softmax"])[token] for h in heads], 0))
        layer += 1
    return rows


def alignment_row(trace, token: int) -> np.ndarray:
    """Row `token`'s cross-attention averaged over the alignment heads."""
    heads = np.asarray(trace[HEADS_ID]).astype(int)
    return np.mean([np.asarray(trace[f"blocks.{layer}.cross_attn.head.{head}.softmax"])[token] for layer, head in heads], 0)
