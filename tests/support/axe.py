"""axe-core, installed from npm into var/npm (gitignored) by bootstrap.sh test.

Injected into a page through Playwright in a context created with bypass_csp=True:
the portal's own CSP stays as strict as in production.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "npm install --no-audit --no-fund --prefix var/npm axe-core@4"


def axe_path() -> Path:
    path = Path(os.environ.get("ISPEDGE_AXE_JS")
                or ROOT / "var/npm/node_modules/axe-core/axe.min.js")
    if not path.is_file():
        pytest.skip(f"needs axe-core: `{INSTALL}` (bootstrap.sh test does it)")
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """Serious or critical axe-core violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_path()))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
          .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")) }));
    }""")
    return list(found)
