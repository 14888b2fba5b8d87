"""Protocols as data: the models of protocol, adaptation and variant files, reading them
with file:line errors, composing a base with adaptations and a variant, instruments, and
the one reference checker that the compiler, ``iptflow check`` and lint share.

Nothing here runs a course; the engine (:mod:`iptflow.engine`) builds on it.
"""

from iptflow.protocol.models import (
    ANY_ACTIVE,
    AdaptationDef,
    ProtocolDef,
    ResolvedProtocol,
    SessionRange,
    StateDef,
    TransitionDef,
)
from iptflow.protocol.references import Finding, check_references
from iptflow.protocol.variants import VariantDef

__all__ = [
    "ANY_ACTIVE",
    "AdaptationDef",
    "Finding",
    "ProtocolDef",
    "ResolvedProtocol",
    "SessionRange",
    "StateDef",
    "TransitionDef",
    "check_references",
    "VariantDef",
]
