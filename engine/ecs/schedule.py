"""The frame's phases and the systems registered in them, in one readable, ordered table.

A system is a plain callable ``system(frame)``. Phases run in PHASES order; within a phase,
systems run in registration order unless placed with ``before=``/``after=``. Every system is
timed every frame; the profiler reads ``Schedule.timings``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

# The order of one frame, read top to bottom.
PHASES = (
    "input",
    "simulation",
    "animation",
    "camera",
    "transform",
    "visibility",
    "lod",
    "instancing",
    "render",
    "overlay",
)


class ScheduleError(ValueError):
    """A system was registered into an unknown phase or ordered against an unknown system."""


@dataclass
class SystemEntry:
    name: str
    phase: str
    run: Callable
    enabled: bool = True


class Schedule:
    def __init__(self):
        self._systems: dict[str, list[SystemEntry]] = {phase: [] for phase in PHASES}
        self.timings: dict[str, float] = {}  # system name -> ms, last frame

    def add(self, phase: str, name: str, system: Callable, *, before: str | None = None,
            after: str | None = None) -> None:
        if phase not in self._systems:
            raise ScheduleError(f"unknown phase {phase!r}; phases are: {', '.join(PHASES)}")
        if any(entry.name == name for entries in self._systems.values() for entry in entries):
            raise ScheduleError(f"a system named {name!r} is already registered")
        entries = self._systems[phase]
        entry = SystemEntry(name, phase, system)
        anchor = before or after
        if anchor is None:
            entries.append(entry)
            return
        index = next((i for i, e in enumerate(entries) if e.name == anchor), None)
        if index is None:
            raise ScheduleError(f"cannot order {name!r} against {anchor!r}: no such system in phase {phase!r}")
        entries.insert(index if before else index + 1, entry)

    def enable(self, name: str, enabled: bool = True) -> None:
        for entry in self.entries():
            if entry.name == name:
                entry.enabled = enabled
                return
        raise ScheduleError(f"no system named {name!r}")

    def entries(self) -> list[SystemEntry]:
        return [entry for phase in PHASES for entry in self._systems[phase]]

    def order(self) -> list[str]:
        """'phase/system' names in the order they run: the frame, in one list."""
        return [f"{e.phase}/{e.name}" for e in self.entries()]

    def run(self, frame, phases: tuple[str, ...] = PHASES) -> None:
        timings = {}
        clock = time.perf_counter
        for phase in phases:
            for entry in self._systems[phase]:
                if not entry.enabled:
                    continue
                start = clock()
                entry.run(frame)
                timings[entry.name] = (clock() - start) * 1000.0
        self.timings = timings
