"""Components whose constructor arguments are checked before the component exists.

Amaranth warns about an elaboratable that is created but never elaborated.  A unit whose
constructor rejects its arguments would be exactly that, so the units derive from
:class:`CheckedComponent`: the class's ``plan(*args, **kwargs)`` checks the arguments (ValueError)
and returns the unit's attributes before the object is created; ``__init__`` then only builds the
signature (and any sub-units) from them.  ``plan`` is plain Python, so widths and latencies of a
unit can also be read without building it.
"""
from __future__ import annotations

from amaranth.lib import wiring


class CheckedComponent(wiring.Component):
    """A ``wiring.Component`` whose ``plan`` (a staticmethod taking the constructor's arguments,
    returning ``{attribute: value}``) runs before the object exists."""

    @staticmethod
    def plan(*args, **kwargs) -> dict:
        return {}

    def __new__(cls, *args, **kwargs):
        attrs = cls.plan(*args, **kwargs)  # a ValueError here: no elaboratable was created
        self = super().__new__(cls, src_loc_at=1)  # "created here" = the caller's line
        vars(self).update(attrs)
        return self
