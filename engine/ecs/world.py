"""The entity store: integer ids with generations, and every component kept column per field.

An entity id packs a slot and a generation: ``id = generation << 32 | slot``. Columns are
indexed by slot, so a system gathers any field for any set of entities with one fancy
index. Spawning and destroying work on whole arrays; nothing here loops over entities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .components import COMPONENTS, ComponentSchema

SLOT_BITS = 32
SLOT_MASK = (1 << SLOT_BITS) - 1


class EntityError(ValueError):
    """An operation named an entity that is not alive, or a component that does not exist."""


@dataclass
class Component:
    """One component's columns (field name -> array indexed by slot) and its membership mask."""

    schema: ComponentSchema
    has: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


def _grow(array: np.ndarray, capacity: int, fill) -> np.ndarray:
    grown = np.empty((capacity,) + array.shape[1:], dtype=array.dtype)
    grown[: len(array)] = array
    grown[len(array):] = fill
    return grown


class World:
    """Entities and their components, stored as contiguous numpy columns grown by doubling."""

    def __init__(self, capacity: int = 1024, schemas: dict[str, ComponentSchema] | None = None):
        self.capacity = max(16, int(capacity))
        self.size = 0  # high-water mark of used slots
        self.generation = np.zeros(self.capacity, np.uint32)
        self.alive = np.zeros(self.capacity, bool)
        self._free: np.ndarray = np.empty(0, np.int64)
        self.components: dict[str, Component] = {}
        # Bumped on any spawn/destroy/add/remove so cached queries and indices know to rebuild.
        self.structure_version = 0
        # Bumped by whoever moves or resizes entities; derived world bounds follow it.
        self.transform_version = 0
        self.labels: list[str] = []
        self._query_cache: dict[tuple, tuple[int, np.ndarray]] = {}
        for name, schema in (schemas or COMPONENTS).items():
            self.register(name, schema)

    # ----------------------------------------------------------------- components
    def register(self, name: str, schema: ComponentSchema) -> None:
        comp = Component(schema, np.zeros(self.capacity, bool))
        for fname, spec in schema.fields.items():
            comp.columns[fname] = np.full((self.capacity,) + spec.shape, spec.default, spec.dtype)
        self.components[name] = comp

    def __getitem__(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise EntityError(f"unknown component {name!r}; known: {', '.join(self.components)}") from None

    def column(self, component: str, name: str) -> np.ndarray:
        return self[component].columns[name]

    # ------------------------------------------------------------------ entities
    def _reserve(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = self.capacity
        while capacity < needed:
            capacity *= 2
        self.generation = _grow(self.generation, capacity, 0)
        self.alive = _grow(self.alive, capacity, False)
        for comp in self.components.values():
            comp.has = _grow(comp.has, capacity, False)
            for fname, spec in comp.schema.fields.items():
                comp.columns[fname] = _grow(comp.columns[fname], capacity, spec.default)
        self.capacity = capacity

    def spawn(self, count: int, **components: dict[str, np.ndarray | float]) -> np.ndarray:
        """Create ``count`` entities at once and return their ids (int64).

        Keyword arguments name components; each maps field names to a scalar or an array
        of length ``count``: ``world.spawn(3, transform={"position": xyz})``.
        """
        count = int(count)
        if count < 0:
            raise EntityError(f"spawn count must be >= 0, got {count}")
        reuse = self._free[:count]
        self._free = self._free[len(reuse):]
        fresh_count = count - len(reuse)
        self._reserve(self.size + fresh_count)
        fresh = np.arange(self.size, self.size + fresh_count, dtype=np.int64)
        self.size += fresh_count
        slots = np.concatenate([reuse, fresh]) if len(reuse) else fresh
        self.alive[slots] = True
        ids = (self.generation[slots].astype(np.int64) << SLOT_BITS) | slots
        for name, values in components.items():
            self.add(name, ids, **(values or {}))
        self.structure_version += 1
        return ids

    def destroy(self, ids) -> None:
        """Destroy entities in bulk; their slots are reused by later spawns with a new generation."""
        slots = self.slots(ids)
        slots = np.unique(slots)
        self.alive[slots] = False
        self.generation[slots] += 1
        for comp in self.components.values():
            comp.has[slots] = False
            for fname, spec in comp.schema.fields.items():
                comp.columns[fname][slots] = spec.default
        self._free = np.concatenate([self._free, slots])
        self.structure_version += 1
        self.transform_version += 1

    def slots(self, ids) -> np.ndarray:
        """Slots of live entity ids; raises EntityError naming the first stale or unknown id."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        slots = ids & SLOT_MASK
        gens = (ids >> SLOT_BITS).astype(np.uint32)
        in_range = slots < self.size
        ok = in_range.copy()
        ok[in_range] = self.alive[slots[in_range]] & (self.generation[slots[in_range]] == gens[in_range])
        if not ok.all():
            bad = int(ids[~ok][0])
            raise EntityError(f"entity {bad} (slot {bad & SLOT_MASK}, generation {bad >> SLOT_BITS}) is not alive")
        return slots

    def ids(self, slots) -> np.ndarray:
        slots = np.asarray(slots, dtype=np.int64)
        return (self.generation[slots].astype(np.int64) << SLOT_BITS) | slots

    def is_alive(self, ids) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        slots = ids & SLOT_MASK
        gens = (ids >> SLOT_BITS).astype(np.uint32)
        out = slots < self.size
        out[out] = self.alive[slots[out]] & (self.generation[slots[out]] == gens[out])
        return out

    @property
    def count(self) -> int:
        return int(self.alive[: self.size].sum())

    # --------------------------------------------------------------- membership
    def add(self, component: str, ids, **values) -> None:
        """Attach ``component`` to entities and set any given fields (scalars broadcast)."""
        comp = self[component]
        slots = self.slots(ids)
        comp.has[slots] = True
        for fname, value in values.items():
            if fname not in comp.columns:
                raise EntityError(f"component {component!r} has no field {fname!r}; "
                                  f"fields: {', '.join(comp.columns)}")
            comp.columns[fname][slots] = value
        self.structure_version += 1
        if comp.schema.moves:
            self.transform_version += 1

    def remove(self, component: str, ids) -> None:
        comp = self[component]
        slots = self.slots(ids)
        comp.has[slots] = False
        for fname, spec in comp.schema.fields.items():
            comp.columns[fname][slots] = spec.default
        self.structure_version += 1

    def set(self, component: str, ids, **values) -> None:
        """Write fields of entities that already have ``component``."""
        comp = self[component]
        slots = self.slots(ids)
        for fname, value in values.items():
            comp.columns[fname][slots] = value
        if comp.schema.moves:
            self.transform_version += 1

    def query(self, *components: str) -> np.ndarray:
        """Slots of live entities having every named component; cached until the structure changes."""
        key = tuple(sorted(components))
        cached = self._query_cache.get(key)
        if cached is not None and cached[0] == self.structure_version:
            return cached[1]
        mask = self.alive[: self.size].copy()
        for name in key:
            mask &= self[name].has[: self.size]
        slots = np.flatnonzero(mask)
        self._query_cache[key] = (self.structure_version, slots)
        return slots

    # ------------------------------------------------------------------- labels
    def add_labels(self, ids, texts: list[str], **fields) -> None:
        """Attach one text label per entity; the strings live in ``world.labels``."""
        start = len(self.labels)
        self.labels.extend(texts)
        self.add("label", ids, text_index=np.arange(start, start + len(texts), dtype=np.int32), **fields)
