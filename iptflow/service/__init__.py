"""``iptflow serve``: the store, its courses and rules behind an HTTP API with bearer tokens and
roles, for clinical software not written in Python (extra ``server``; docs/service.md).

:func:`create_app` builds the FastAPI application for one store; :mod:`iptflow.service.server`
runs it on uvicorn. The wing sits beside ``research``, above ``interop``
(docs/architecture.md).
"""

from iptflow.service.app import create_app

__all__ = ["create_app"]
