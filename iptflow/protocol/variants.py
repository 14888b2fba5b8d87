"""Variant files: a researcher's protocol variant, declared in TOML.

A variant ``extends`` a base protocol, names its ``adaptations`` and overrides settings.
Variant settings are applied after the adaptations and win over them::

    id = "ipt-brief"
    version = "1.0.0"
    title = "Brief IPT (IPT-B), 8 sessions"
    extends = "ipt-depression"
    adaptations = []
    session_range = { min = 8, max = 8 }
    review_session = 4

    [deviations.long_initial_phase]
    max_sessions = 2

    [requirements.termination_window]
    sessions = 3
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from iptflow.errors import ProtocolError
from iptflow.protocol.models import Indications, SafeId, SessionCount, SessionRange


class VariantDef(BaseModel):
    """A variant file. Validated strictly, like protocol files: its ``id`` is a
    :data:`~iptflow.protocol.models.SAFE_ID`, ``indications`` (when given) names at least one
    diagnosis, ``review_session = true`` is not 1. Parameters of requirements and deviations
    are checked against their guard's or check's signature when the variant is checked or
    compiled (:func:`iptflow.protocol.references.params_problem`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: SafeId
    version: str
    title: str
    description: str = ""
    extends: str = Field(description="the base protocol: its id (newest version) or id@version")
    adaptations: list[str] = Field(default_factory=list)
    session_range: SessionRange | None = None
    review_session: SessionCount | None = None
    max_problem_areas: int | None = Field(None, ge=1)
    indications: Indications | None = Field(
        None, description="replace the indications (at least one diagnosis)"
    )
    deviations: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="parameters of deviation checks, by deviation code"
    )
    requirements: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="parameters of requirements (guards), by name"
    )

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply this variant's settings to composed protocol data (a dict)."""
        out = dict(data)
        out.update(
            id=self.id,
            version=self.version,
            title=self.title,
            description=self.description or data.get("description", ""),
            variant=f"{self.id}@{self.version}",
        )
        if self.session_range is not None:
            out["session_range"] = self.session_range
        if self.review_session is not None:
            out["review_session"] = self.review_session
        if self.max_problem_areas is not None:
            out["max_problem_areas"] = self.max_problem_areas
        if self.indications is not None:
            out["indications"] = list(self.indications)
        deviations = []
        known_codes = set()
        for dev in data["deviations"]:
            dev_data = dev if isinstance(dev, dict) else dev.model_dump()
            known_codes.add(dev_data["code"])
            if dev_data["code"] in self.deviations:
                dev_data = {
                    **dev_data,
                    "params": {**dev_data["params"], **self.deviations[dev_data["code"]]},
                }
            deviations.append(dev_data)
        for code in self.deviations:
            if code not in known_codes:
                raise ProtocolError(f"variant {self.id}: no deviation {code!r} to set parameters of")
        out["deviations"] = deviations
        requirements = {}
        for name, req in data["requirements"].items():
            req_data = req if isinstance(req, dict) else req.model_dump()
            if name in self.requirements:
                req_data = {**req_data, "params": {**req_data["params"], **self.requirements[name]}}
            requirements[name] = req_data
        for name in self.requirements:
            if name not in requirements:
                raise ProtocolError(f"variant {self.id}: no requirement {name!r} to set parameters of")
        out["requirements"] = requirements
        return out
