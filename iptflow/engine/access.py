"""Who is asking, and what they ask to do: the principal and the actions of ``iptflow serve``
that the ``authorize`` hook decides on (docs/hooks.md#authorize, docs/service.md#roles).

The engine only carries the question to the plugins: :func:`plugin_decision` asks each
plugin implementing ``authorize`` in pluggy's call order (the plugin registered last first),
through pluggy, and the first answer that is not ``None`` wins; the service applies its
default policy when every plugin abstains.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from iptflow.engine.registry import Registry, hook_raised
from iptflow.errors import PluginError

if TYPE_CHECKING:
    from iptflow.engine.course import Course

__all__ = ["ACTIONS", "Principal", "authorizers", "plugin_decision"]

ACTIONS: tuple[str, ...] = (
    "open_course",  # POST /courses
    "record_event",  # POST /courses/{id}/events
    "list_courses",  # GET /courses
    "read_course",  # GET /courses/{id}
    "read_events",  # GET /courses/{id}/events
    "read_fhir",  # GET /courses/{id}/fhir
    "read_protocols",  # GET /protocols, /protocols/{ref}
    "read_worklist",  # GET /worklist
    "verify",  # GET /verify
    "manage_tokens",  # /tokens
)
"""Every action a request can ask for (the ``action`` argument of ``authorize``)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the token it carried (its id, never its secret), the token's role
    and the actor its events are recorded under."""

    token_id: str
    role: str
    actor: str


_AUTHORIZERS: weakref.WeakKeyDictionary[Registry, list[tuple[str, Any]]] = weakref.WeakKeyDictionary()


def authorizers(registry: Registry) -> list[tuple[str, Any]]:
    """``(plugin, caller)`` of each plugin implementing ``authorize``, in pluggy's call order
    (fixed when first asked, like the registry's observers)."""
    callers = _AUTHORIZERS.get(registry)
    if callers is None:
        callers = _AUTHORIZERS[registry] = list(reversed(registry._per_plugin("authorize")))
    return callers


def plugin_decision(
    registry: Registry, principal: Principal, action: str, course: Course | None
) -> bool | None:
    """The first non-``None`` answer of the plugins' ``authorize`` hooks (pluggy's call order,
    the plugin registered last first), or ``None`` when every plugin abstains (or none
    implements the hook). A plugin that raises, or answers anything but ``True``, ``False`` or
    ``None``, is a :class:`~iptflow.errors.PluginError` naming it."""
    for plugin, caller in authorizers(registry):
        try:
            answers = caller(principal=principal, action=action, course=course)
        except Exception as exc:
            raise hook_raised(plugin, "authorize", exc) from exc
        for answer in answers:
            if answer is None:
                continue
            if not isinstance(answer, bool):
                raise PluginError(
                    f"plugin {plugin}: hook authorize must return True, False or None, "
                    f"got {type(answer).__name__}",
                    plugin=plugin, hook="authorize",
                )
            return answer
    return None
