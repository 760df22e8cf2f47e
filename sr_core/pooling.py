"""Pooling counts over patches: one rule for every class of counts that adds up (``a + b``, ``sum(items)``).

A poolable class is a dataclass that derives from :class:`Poolable`; ``a + b`` builds a new instance whose fields
are pooled one by one with :func:`pool_value`:

==================================  =================================================================================
field value                         pooled
==================================  =================================================================================
None on one side                    the other side (a layer one patch has and another lacks)
bool                                ``a and b`` (e.g. "the evidence was independent" holds for the pool if for all)
str                                 the left side's (a label such as the kind of uncertainty)
mapping                             key by key over the union of keys; a key on one side only keeps its value
tuple of str                        both sides' items, in order, each once (e.g. warnings)
tuple                               element by element (same length)
number, numpy array, Poolable       ``a + b``
==================================  =================================================================================

A class with a field that needs more (a check, a recomputed label) overrides ``__add__`` and calls
:meth:`Poolable.pooled_fields`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self


def pool_value(a: Any, b: Any) -> Any:
    """Pool two values of the same field (see the module's table)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, bool):
        return a and b
    if isinstance(a, str):
        return a
    if isinstance(a, Mapping):
        return {k: pool_value(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}
    if isinstance(a, tuple):
        if all(isinstance(x, str) for x in (*a, *b)):
            return tuple(dict.fromkeys([*a, *b]))
        return tuple(pool_value(x, y) for x, y in zip(a, b, strict=True))
    return a + b


class Poolable:
    """Mixin for dataclasses of counts: ``a + b`` pools field by field; ``sum(items)`` starts from 0."""

    def pooled_fields(self, other: Self) -> dict[str, Any]:
        """The fields of ``self + other``, by name."""
        return {f.name: pool_value(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)}

    def __add__(self, other: Any) -> Self:
        if not isinstance(other, type(self)):
            return NotImplemented
        return type(self)(**self.pooled_fields(other))

    def __radd__(self, other: Any) -> Self:
        """Lets ``sum(counts)`` start from 0."""
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented
