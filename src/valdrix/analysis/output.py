"""What the model must answer, checked before anything is stored.

The answer is advisory: it is validated into this shape (known labels only, one entry per
finding, enumerated risk and action, bounded text) and stored as text beside the findings. It
never changes a finding, a budget or anything else.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

RiskLevel = Literal["low", "medium", "high"]
Action = Literal["delete", "snapshot_then_delete", "stop", "release", "rightsize", "review", "keep"]
RISKS: tuple[str, ...] = get_args(RiskLevel)
ACTIONS: tuple[str, ...] = get_args(Action)


def _bounded(limit: int) -> BeforeValidator:
    def cut(value: object) -> object:
        if isinstance(value, str) and len(value) > limit:
            return value[: limit - 1] + "…"
        return value

    return BeforeValidator(cut)


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class FindingAdvice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    finding: str
    risk: Annotated[RiskLevel, BeforeValidator(_lower)]
    action: Annotated[Action, BeforeValidator(_lower)]
    rationale: Annotated[str, _bounded(600)]


class AnalysisAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: Annotated[str, _bounded(2000)]
    findings: list[FindingAdvice]
    priority: list[str] = []


class InvalidAnswer(ValueError):
    """The model's answer is not what we asked for; ``problems`` says why, for a repair turn."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_answer(text: str, labels: set[str]) -> AnalysisAnswer:
    """Validate the model's text against the schema and the labels we sent."""
    try:
        data = json.loads(_strip_fences(text))
    except json.JSONDecodeError as exc:
        raise InvalidAnswer([f"not a JSON object ({exc.msg} at position {exc.pos})"]) from exc
    try:
        answer = AnalysisAnswer.model_validate(data)
    except ValidationError as exc:
        raise InvalidAnswer(
            [
                f"{'.'.join(map(str, error['loc'])) or 'answer'}: {error['msg']}"
                for error in exc.errors()[:8]
            ]
        ) from exc
    problems: list[str] = []
    advised = [advice.finding for advice in answer.findings]
    if unknown := sorted(set(advised) - labels):
        problems.append(f"findings: unknown labels {', '.join(unknown)}")
    if repeated := sorted({label for label in advised if advised.count(label) > 1}):
        problems.append(f"findings: labels given more than once: {', '.join(repeated)}")
    if missing := sorted(labels - set(advised), key=_label_order):
        problems.append(f"findings: no entry for {', '.join(missing)}")
    if stray := sorted(set(answer.priority) - labels):
        problems.append(f"priority: unknown labels {', '.join(stray)}")
    if problems:
        raise InvalidAnswer(problems)
    return answer


def _label_order(label: str) -> int:
    return int(label[1:]) if label[1:].isdigit() else 0


def _strip_fences(text: str) -> str:
    """Models asked for bare JSON still sometimes wrap it in a Markdown code fence."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped
