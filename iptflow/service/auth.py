"""Who a request is (its bearer token) and whether it may do what it asks.

A request carries ``Authorization: Bearer SECRET``; the token's row (found by the SHA-256 of the
secret, :mod:`iptflow.store.tokens`) gives its role and actor. Then the plugins' ``authorize``
hooks decide (:func:`iptflow.engine.access.plugin_decision`: the first answer that is not
``None`` wins) and, when they all abstain, :data:`DEFAULT_POLICY`. A denied request is 403 and
writes nothing (docs/service.md#roles).
"""

from __future__ import annotations

from fastapi import Request

from iptflow.engine.access import Principal, authorizers, plugin_decision
from iptflow.engine.course import Course
from iptflow.service.problems import ProblemError
from iptflow.store import Store, UnknownCourse
from iptflow.store.tokens import token_for_secret

__all__ = ["DEFAULT_POLICY", "Caller", "authenticate", "authorize"]

_CLINICAL_READS = frozenset({"list_courses", "read_course", "read_events", "read_fhir",
                             "read_protocols", "read_worklist"})

DEFAULT_POLICY: dict[str, frozenset[str]] = {
    "clinician": _CLINICAL_READS | {"open_course", "record_event"},
    "researcher": frozenset({"list_courses", "read_course", "read_protocols"}),
    "auditor": _CLINICAL_READS | {"verify"},
    "admin": frozenset({"manage_tokens", "read_protocols"}),
}
"""What each role may do when no plugin decides: clinicians open courses, record events and
read (worklist too); researchers read course summaries and protocols only (no event log, no
actor, no FHIR, no worklist);
auditors read everything and run verify; admins manage tokens."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="iptflow"'}


def authenticate(store: Store, authorization: str | None) -> Principal:
    """The principal of a request's ``Authorization`` header; 401 when it is missing, not a
    bearer token, unknown or revoked."""
    if not authorization:
        raise ProblemError(401, "unauthorized", "this request needs a bearer token "
                           "(Authorization: Bearer ...); iptflow token create makes one",
                           headers=_CHALLENGE)
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ProblemError(401, "unauthorized", "the Authorization header must be "
                           "'Bearer TOKEN'", headers=_CHALLENGE)
    token = token_for_secret(store, secret.strip())
    if token is None:
        raise ProblemError(401, "unauthorized", "this token is not known to the store",
                           headers=_CHALLENGE)
    if token.revoked:
        raise ProblemError(401, "token_revoked", f"token {token.id} was revoked at "
                           f"{token.revoked_at}", headers=_CHALLENGE)
    return Principal(token_id=token.id, role=token.role, actor=token.actor)


def authorize(store: Store, principal: Principal, action: str, course_id: str | None = None) -> None:
    """Allow the request, or raise the 403 problem. The plugins' ``authorize`` hooks see the
    stored course ``course_id`` names (``None`` when it names none or it does not exist); the
    course is only loaded when some plugin implements the hook."""
    registry = store.registry
    allowed: bool | None = None
    if authorizers(registry):
        course: Course | None = None
        if course_id is not None:
            try:
                course = store.get(course_id)
            except UnknownCourse:
                course = None
        allowed = plugin_decision(registry, principal, action, course)
    if allowed is None:
        allowed = action in DEFAULT_POLICY.get(principal.role, frozenset())
    if not allowed:
        raise ProblemError(403, "forbidden", f"the {principal.role} token {principal.token_id} "
                           f"may not {action.replace('_', ' ')}"
                           + (f" on course {course_id}" if course_id is not None else ""))


class Caller:
    """The credentials of one request, checked on a store thread: :meth:`allow` authenticates,
    authorizes and notes the token's id and role for the access log."""

    def __init__(self, request: Request) -> None:
        self.authorization = request.headers.get("authorization")
        self.state = request.state

    def allow(self, store: Store, action: str, course_id: str | None = None) -> Principal:
        principal = authenticate(store, self.authorization)
        self.state.token_id = principal.token_id
        self.state.role = principal.role
        authorize(store, principal, action, course_id)
        return principal
