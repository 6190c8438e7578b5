"""What a client reads of its newest state beyond whole columns: the entity ids, the exact
quantised values the server sent, one entity by its id. The names are the JS mirror's
(demo/js/mirror.js: ``ids()``, ``slotOf(id)``, ``entity(id)``, whose ``q`` and ``v`` are the
same quantised and game values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core.schema import Schema
from ..core.state import State


@dataclass(frozen=True)
class Entity:
    """One live entity of the newest state: ``q`` its quantised values by field (ints, exactly
    as sent), ``v`` the same as game values (dequantised: floats for float and angle fields)."""

    id: int
    slot: int
    q: dict[str, int]
    v: dict[str, float | int]


class EntityReads:
    """The entity reads of ``Client`` (it supplies ``state`` and ``schema``)."""

    @property
    def state(self) -> State | None:
        raise NotImplementedError

    @property
    def schema(self) -> Schema:
        raise NotImplementedError

    def _newest(self) -> State:
        st = self.state
        if st is None:
            raise RuntimeError("no state yet")
        return st

    def ids(self) -> NDArray[np.uint32]:
        """Ids of the live entities of the newest state, in slot order: the ids of
        ``column(name)[alive()]`` and ``wire(name)[alive()]``, element by element."""
        st = self._newest()
        return st.ids[st.alive]

    def wire(self, name: str) -> NDArray[Any]:
        """The exact quantised values of field ``name`` in the newest state, every slot (dead
        ones 0), in the field's little-endian wire dtype: what the server sent, bit for bit
        (``column(name)`` is these, dequantised)."""
        return self._newest().wire(self.schema, name)

    def slot_of(self, entity_id: int) -> int:
        """The slot of live entity ``entity_id`` in the newest state, or -1."""
        st = self._newest()
        hits = np.flatnonzero((st.ids == entity_id) & st.alive)
        return int(hits[0]) if hits.size else -1

    def entity(self, entity_id: int) -> Entity | None:
        """Live entity ``entity_id`` of the newest state, or None."""
        slot = self.slot_of(entity_id)
        if slot < 0:
            return None
        row = self._newest().mat[:, slot:slot + 1]
        q: dict[str, int] = {}
        v: dict[str, float | int] = {}
        for i, f in enumerate(self.schema):
            wire = row[i].astype(f.wire_dtype)
            q[f.name], v[f.name] = int(wire[0]), f.dequantise(wire)[0].item()
        return Entity(entity_id, slot, q, v)
