#!/usr/bin/env python3
"""Summarise a datera-iac JSON plan for a pull-request comment or a drift alert.

    datera-iac preview --json > plan.json;  python drift_report.py plan.json
    datera-iac preview --refresh-only --refresh=full --json > drift.json;  python drift_report.py drift.json

Prints Markdown: the action counts, one line per planned action (with the fields that
change), and for drift which attributes of which objects differ from the state. Exits 0;
the pipeline decides what to do from datera-iac's own --detailed-exitcode.
Validates nothing itself: the plan format is described by datera_iac/engine/plan.schema.json.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ICON = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "import": "<=", "forget": "~-"}


def report(plan: dict[str, Any]) -> str:
    lines: list[str] = []
    mode = plan.get("mode", "normal")
    if mode == "refresh-only":
        drift = plan.get("drift", [])
        if not drift:
            return f"**{plan['stack']}**: no drift, the DSP matches the state."
        lines.append(f"**{plan['stack']}**: {len(drift)} object(s) drifted from the state")
        lines.append("")
        for d in drift:
            if d["status"] == "deleted":
                lines.append(f"- `{d['name']}` ({d['kind']} `{d['id']}`) was **deleted** outside datera-iac")
            else:
                what = ", ".join(
                    f"`{c['field']}`: {json.dumps(c['old'])} → {json.dumps(c['new'])}" for c in d["changes"]
                ) or ", ".join(d["fields"])
                lines.append(f"- `{d['name']}` ({d['kind']} `{d['id']}`): {what}")
        return "\n".join(lines)
    s = plan["summary"]
    counts = ", ".join(f"{n} to {a}" for a, n in s.items() if n)
    lines.append(f"**{plan['stack']}** ({mode}): {counts or 'no changes'}")
    for e in plan.get("errors", []):
        lines.append(f"- :x: {e}")
    if plan.get("actions"):
        lines.append("")
        lines.append("```diff")
        for a in plan["actions"]:
            fields = [c["field"] for c in a["changes"]]
            how = f" ({a['strategy']})" if a.get("strategy") else ""
            tail = f"  [{', '.join(fields)}]" if fields and a["action"] != "create" else ""
            lines.append(f"{ICON.get(a['action'], '?')} {a['action']} {a['kind']} {a['name']}{how}{tail}")
        lines.append("```")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        plan = json.load(f)
    print(report(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
