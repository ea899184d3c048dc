"""whisper-tiny's panel: the clip's waveform and log-mel spectrogram, each decoder layer's cross-attention of the
chosen token drawn back onto the clip's time axis, the alignment heads' mean with the DTW timing path over the
spectrogram and each token's span over the waveform, the transcript tokens with probabilities and times, and
a file to open: a path, a native file dialog (in its own process, polled each frame), a dropped file or the
next shipped sample; everything is read and computed on the worker (scenes/whisper_live.py).

The pictures are one RGBA texture composed with numpy (scenes/whisper_picture.py) when the trace or the
choice changes; the path and the spans are lines drawn over it.
"""
from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from llmviz.common import i18n
from llmviz.models.sim.audio_features import HOP, SAMPLE_RATE
from llmviz.scenes.panel_file_open import FileOpener
from llmviz.scenes.panels import (BAR_RGB, BAR_TOP_RGB, DIM_RGB, ERROR_RGB, PANEL_WIDTH, begin_side_panel, end_side_panel,
                                  fit_side_panel)
from llmviz.scenes.whisper_live import (ENDS_ID, HEADS_ID, INFO_ID, PATH_ID, PICTURE_ID, PROBS_ID, STARTS_ID, WAVE_ID,
                                        alignment_row, cross_rows, token_labels)
from llmviz.scenes.whisper_picture import BAND_H, SPEC_H, WAVE_H, WIDTH, attention_band, clip_picture, to_uint8

FILE_FILTERS = ["Sound (WAV, FLAC, OGG, MP3)", "*.wav *.flac *.ogg *.mp3 *.WAV *.FLAC *.OGG *.MP3"]


def compose(trace, token: int, head: int | None) -> tuple[np.ndarray, int]:
    """(H, WIDTH, 4) uint8: the waveform and the spectrogram (the clip's picture, made on the worker), a band
    per decoder layer with row `token`'s cross-attention, and the alignment heads' band; and how many bands."""
    frames = int(np.asarray(trace["stage.log"]).shape[1])
    base = trace[PICTURE_ID] if PICTURE_ID in trace else \
        clip_picture(trace["audio.features"], frames, trace[WAVE_ID], WIDTH, WAVE_H, SPEC_H)
    parts = [np.asarray(base)]
    source = max(1, frames // 2)
    bands = [r[:source] for r in cross_rows(trace, token, head)] + [alignment_row(trace, token)[:source]]
    gap = np.full((2, WIDTH, 3), 51, np.uint8)
    for band in bands:
        parts += [gap, to_uint8(attention_band(band, WIDTH, BAND_H))]
    rgb = np.concatenate(parts)
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    return out, len(bands)


def path_corners(path: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The DTW path (token row, encoder frame) as the panel draws it over the spectrogram, in pixels from its
    corner: only the points where the path turns (a staircase of a few dozen, not one per frame)."""
    rows, cols = path
    keep = np.ones(rows.size, bool)
    if rows.size > 2:
        steps = np.stack([np.diff(rows), np.diff(cols)], 1)
        keep[1:-1] = np.any(steps[1:] != steps[:-1], axis=1)
    n_rows = max(1, int(rows.max()) + 1)
    return (cols[keep] + 0.5) * 2 / frames * WIDTH, SPEC_H - (rows[keep] + 0.5) / n_rows * SPEC_H


class WhisperPanel:
    """Draws a LiveWhisper's clip, attention, timings and tokens; opening a file goes back to it."""

    def __init__(self, live, ui_renderer=None):
        self.live = live
        self.ui_renderer = ui_renderer
        self.opener = FileOpener(i18n.tr("whisper.dialog_title"), [i18n.tr("whisper.filter"), FILE_FILTERS[1]], live.source)
        self._texture = None
        self._shown = None

    def draw_in(self, area) -> None:
        fit_side_panel(area)
        self.draw(area.width - PANEL_WIDTH - 10, area.top)

    def draw(self, x: float, y: float) -> None:
        s = self.live
        self.opener.poll(s.set_audio_path)
        if begin_side_panel(i18n.tr("whisper.title") + "###whisper", x, y):
            imgui.text_colored(DIM_RGB, s.about)
            self._open(s)
            imgui.separator()
            if s.trace is None:
                imgui.text_colored(DIM_RGB, i18n.tr("whisper.waiting"))
            else:
                self._pictures(s)
                imgui.separator()
                self._tokens(s)
            if s.error:
                imgui.text_colored(ERROR_RGB, s.error)
        end_side_panel()

    def _open(self, s) -> None:
        self.opener.draw(s.source, s.set_audio_path)
        imgui.same_line()
        if imgui.button(i18n.tr("vit.next_sample") + "###next_sample"):
            s.step()
        imgui.same_line()
        if imgui.button(i18n.tr("whisper.play") + "###play_clip"):
            s.play_clip()
        imgui.text_colored(DIM_RGB, i18n.tr("whisper.formats"))
        if s.player is not None and s.player.status:
            imgui.text_colored(DIM_RGB, s.player.status)
        self.opener.draw_note()

    def _pictures(self, s) -> None:
        tr, c = s.trace, s.choice
        labels = token_labels(tr)
        token = min(c.token, len(labels) - 2)
        imgui.text(i18n.tr("whisper.token"))
        for k in range(len(labels) - 1):     # the rows that predict the next token
            imgui.same_line()
            if imgui.radio_button(f"{labels[k + 1]}##row{k}", token == k):
                s.choose(token=k)
        n_heads = sum(1 for i in tr if i.startswith("blocks.0.cross_attn.head.") and i.endswith(".softmax"))
        imgui.text(i18n.tr("vit.head"))
        for h in [None, *range(n_heads)]:
            imgui.same_line()
            if imgui.radio_button(i18n.tr("vit.mean") + "###meanxhead" if h is None else f"{h}##xhead", c.head == h):
                s.choose(head=h)
        key = (s.trace_version, token, c.head)
        if key != self._shown:      # composed only when the trace or the choice changes, not every frame
            self._picture = compose(tr, token, c.head)
            self._shown = key
            if self.ui_renderer is not None:
                self._upload(self._picture[0])
        rgba, n_bands = self._picture
        origin = imgui.get_cursor_screen_pos()
        if self.ui_renderer is not None:
            imgui.image(self._texture.id, imgui.ImVec2(rgba.shape[1], rgba.shape[0]))
        else:
            imgui.dummy(imgui.ImVec2(rgba.shape[1], rgba.shape[0]))
        self._overlay(s, origin, labels, n_bands)
        heads = ", ".join(i18n.tr("whisper.layer_head", layer=int(a), head=int(b)) for a, b in np.asarray(tr[HEADS_ID]))
        imgui.text_colored(DIM_RGB, i18n.tr("whisper.bands", token=labels[token + 1], heads=heads,
                                            which=i18n.tr("whisper.heads_mean") if c.head is None
                                            else i18n.tr("whisper.head", head=c.head)))

    def _overlay(self, s, origin, labels, n_bands) -> None:
        tr = s.trace
        frames = int(np.asarray(tr["stage.log"]).shape[1])
        seconds = frames * HOP / SAMPLE_RATE
        dl = imgui.get_window_draw_list()
        x0, y_spec = origin.x, origin.y + WAVE_H
        span = imgui.get_color_u32(imgui.ImVec4(1.0, 0.55, 0.2, 0.9))
        text = imgui.get_color_u32(imgui.ImVec4(1.0, 0.9, 0.6, 1.0))
        for k, (a, b) in enumerate(zip(np.asarray(tr[STARTS_ID]), np.asarray(tr[ENDS_ID]))):
            xa, xb = x0 + a / seconds * WIDTH, x0 + b / seconds * WIDTH
            dl.add_line(imgui.ImVec2(xa, origin.y), imgui.ImVec2(xa, origin.y + WAVE_H), span)
            dl.add_text(imgui.ImVec2((xa + xb) / 2 - 3, origin.y + 1), text, labels[k + 1])
        xs, ys = path_corners(np.asarray(tr[PATH_ID]), frames)
        pts = [imgui.ImVec2(x0 + x, y_spec + y) for x, y in zip(xs.tolist(), ys.tolist())]   # a few corners
        for a, b in zip(pts, pts[1:]):
            dl.add_line(a, b, span, 2.0)
        y_align = y_spec + SPEC_H + (n_bands - 1) * (BAND_H + 2) + 2
        imgui.get_window_draw_list().add_rect(imgui.ImVec2(x0, y_align), imgui.ImVec2(x0 + WIDTH, y_align + BAND_H),
                                              span)
        for k in range(int(seconds) + 1):
            x = x0 + k / seconds * WIDTH
            dl.add_text(imgui.ImVec2(x + 1, y_spec + 1), text, f"{k} s")

    def _upload(self, rgba: np.ndarray) -> None:
        self._texture = self.ui_renderer.ui_image(rgba, self._texture)  # sampled nearest: a pixel is a pixel

    def _tokens(self, s) -> None:
        tr = s.trace
        labels = token_labels(tr)
        probs, starts, ends = (np.asarray(tr[i]) for i in (PROBS_ID, STARTS_ID, ENDS_ID))
        info = np.asarray(tr[INFO_ID])
        imgui.text(i18n.tr("whisper.transcript", text=s.transcript or i18n.tr("whisper.nothing"))
                   + (i18n.tr("whisper.generating") if s.revealed < s.n_tokens else "")
                   + (i18n.tr("nano.computing") if s.busy else ""))
        for k, p in enumerate(probs):
            shown = k + 1 <= s.revealed
            imgui.text(labels[k + 1] if shown else "…")
            imgui.same_line(50)
            imgui.push_style_color(imgui.Col_.plot_histogram, BAR_TOP_RGB if k == s.choice.token else BAR_RGB)
            imgui.progress_bar(float(p) if shown else 0.0, imgui.ImVec2(150, 0), f"p {i18n.num(float(p), '.3f')}" if shown else "")
            imgui.pop_style_color()
            if k < len(starts):
                imgui.same_line()
                imgui.text_colored(DIM_RGB, i18n.tr("whisper.span", a=float(starts[k]), b=float(ends[k])))
        imgui.text_colored(DIM_RGB, i18n.tr("whisper.clip_info", seconds=float(info[0]), hz=int(info[1]),
                                            cut=i18n.tr("whisper.cut") if info[3] else "", ms=1000 * float(info[4])))
