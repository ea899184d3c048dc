"""Guided chapters: chapter files (format), live-number text (text), animation frames (animations), the runner."""
