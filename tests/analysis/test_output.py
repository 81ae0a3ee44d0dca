"""What counts as a valid answer from the model."""

from __future__ import annotations

import json

import pytest

from valdrix.analysis.output import InvalidAnswer, parse_answer

LABELS = {"f1", "f2"}


def answer(**changes: object) -> str:
    body: dict[str, object] = {
        "summary": "Two idle volumes.",
        "findings": [
            {"finding": "f1", "risk": "low", "action": "delete", "rationale": "Unused."},
            {"finding": "f2", "risk": "High", "action": "review", "rationale": "Check first."},
        ],
        "priority": ["f1", "f2"],
    }
    body.update(changes)
    return json.dumps(body)


def test_a_complete_answer_is_accepted_with_case_and_extra_keys_tolerated() -> None:
    parsed = parse_answer(answer(confidence=0.9), LABELS)
    assert [a.risk for a in parsed.findings] == ["low", "high"]


def test_a_fenced_answer_is_accepted() -> None:
    assert parse_answer("```json\n" + answer() + "\n```", LABELS).summary


def test_overlong_text_is_cut_not_rejected() -> None:
    parsed = parse_answer(answer(summary="x" * 5000), LABELS)
    assert len(parsed.summary) == 2000


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Here you go: all good", "not a JSON object"),
        ("[1, 2]", "answer: Input should be a valid dictionary"),
        (answer(findings=[]), "no entry for f1, f2"),
        (
            answer(
                findings=[
                    {"finding": "f1", "risk": "low", "action": "delete", "rationale": "a"},
                    {"finding": "f1", "risk": "low", "action": "delete", "rationale": "b"},
                    {"finding": "f9", "risk": "low", "action": "delete", "rationale": "c"},
                ]
            ),
            "unknown labels f9",
        ),
        (answer(priority=["f3"]), "priority: unknown labels f3"),
        (
            answer(
                findings=[
                    {"finding": "f1", "risk": "none", "action": "delete", "rationale": ""},
                    {"finding": "f2", "risk": "low", "action": "format-c", "rationale": ""},
                ]
            ),
            "findings.0.risk",
        ),
    ],
)
def test_invalid_answers_are_refused_with_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidAnswer) as refused:
        parse_answer(text, LABELS)
    assert problem in str(refused.value)
