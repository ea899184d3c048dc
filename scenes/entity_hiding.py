"""Entities hidden and shown again through the engine's FLAG_HIDDEN bit, leaving their highlight and dim
bits to the flag layers: a hidden entity is neither culled nor drawn (a box moved out of the way is still
tested, and drawn if the camera sees where it went)."""
from __future__ import annotations

import numpy as np

from llmviz.engine.ecs.components import FLAG_HIDDEN


def set_hidden(world, ids, hidden) -> None:
    """Hide (True) or show (False) entities; `hidden` is one bool or one per entity."""
    flags = world["renderable"]["flags"]
    slots = world.slots(ids)
    bit = flags.dtype.type(FLAG_HIDDEN)
    flags[slots] = np.where(np.asarray(hidden, bool), flags[slots] | bit, flags[slots] & ~bit)
