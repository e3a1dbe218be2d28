"""One place for mask strings (issue 15): ``datera_iac.secrets`` defines ``***`` (logs,
errors), ``(sensitive)`` (plans, diagnostics) and ``********`` (cinder.conf) - each pinned
by the tests of what users see there - and no other module of ours spells a mask."""

from __future__ import annotations

import re
from pathlib import Path

from datera_iac.secrets import CONF_MASK, DSP_HIDDEN, MASK, SHOWN, redact_url

ROOT = Path(__file__).resolve().parents[1]
#: a mask spelled as a literal: stars, "(sensitive)", "<redacted>", "[masked]" (the DSP's
#: own "(hidden)" is named in prose; its one constant is secrets.DSP_HIDDEN)
MASK_LITERAL = re.compile(r"""["'](?:\*{3,}|\(sensitive\)|<redacted>|\[masked\]|"""
                          r"""redacted|REDACTED)["']|:\*{3}@|\(\*{3}\)""")
GENERATED = {"datera_iac/pulumi/_sdk.py"}


def test_no_mask_literal_outside_secrets():
    """Every mask in datera_iac/ and datera_iac_tf/ comes from datera_iac.secrets."""
    found = []
    for d in ("datera_iac", "provider"):
        for p in sorted((ROOT / d).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel in GENERATED or rel == "datera_iac/secrets.py":
                continue
            for n, line in enumerate(p.read_text().splitlines(), 1):
                if MASK_LITERAL.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_literal_check_can_fail():
    """The pattern finds each mask spelling this module forbids."""
    for line in ('x = "***"', "s = '(sensitive)'", 'c = "********"', 'u = r"\\1:***@"',
                 'return "Secret(***)"', 'y = "<redacted>"'):
        assert MASK_LITERAL.search(line), line


def test_the_three_masks_and_the_dsps_marker():
    """The strings users see, as the tests of each surface pin them."""
    assert (MASK, SHOWN, CONF_MASK, DSP_HIDDEN) == ("***", "(sensitive)", "********", "(hidden)")
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://h/db") == "postgresql://h/db"
