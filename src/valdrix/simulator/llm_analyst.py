"""A deterministic stand-in analyst for the simulated LLM: it reads the findings block of an
analysis prompt and answers in the requested JSON shape, the way a well-behaved model would.

It lets the demo and the tests exercise the whole analysis path (prompt, budget, validation,
storage) without a real model; its advice is a rule of thumb per detector, not intelligence.
"""

from __future__ import annotations

import json
import re
from typing import Any

FINDINGS_BLOCK = re.compile(r"<findings>\s*(.*?)\s*</findings>", re.DOTALL)

# (risk of acting, action) per detector family; anything else gets a review.
ADVICE = {
    "ebs": ("low", "snapshot_then_delete"),
    "snapshot": ("low", "delete"),
    "eip": ("low", "release"),
    "elb": ("medium", "delete"),
    "nat": ("medium", "delete"),
    "ec2": ("medium", "stop"),
    "rds": ("high", "snapshot_then_delete"),
    "elasticache": ("medium", "rightsize"),
}


def prompt_findings(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings sent in a chat-completions request (from whichever message holds them)."""
    for message in request.get("messages", []):
        if message.get("role") != "user":
            continue
        match = FINDINGS_BLOCK.search(str(message.get("content", "")))
        if match:
            findings: list[dict[str, Any]] = json.loads(match.group(1))["findings"]
            return findings
    return []


def analyst_answer(request: dict[str, Any]) -> str:
    findings = prompt_findings(request)
    advice = []
    for finding in findings:
        family = str(finding.get("detector", "")).removeprefix("aws.").split("-")[0]
        risk, action = ADVICE.get(family, ("medium", "review"))
        cost = finding.get("monthly_cost_usd")
        advice.append(
            {
                "finding": finding["label"],
                "risk": risk,
                "action": action,
                "rationale": f"{finding.get('reason', '')} It costs about ${cost} per month."
                if cost
                else str(finding.get("reason", "")),
            }
        )
    total = sum(float(f.get("monthly_cost_usd") or 0) for f in findings)
    summary = (
        f"The {len(findings)} costliest finding(s) analysed cost about ${total:,.2f} per month."
        " Start with the low-risk clean-ups at the top of the priority list."
    )
    by_risk = sorted(advice, key=lambda a: ("low", "medium", "high").index(a["risk"]))
    return json.dumps(
        {"summary": summary, "findings": advice, "priority": [a["finding"] for a in by_risk]}
    )
