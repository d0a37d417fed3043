"""Copy the README's screenshots from the last browser-test run (test-artefacts/screenshots/, not committed) to
tests/browser/screenshots/ (committed, shown in the README). Run the browser tests first:
    .venv/bin/python -m pytest tests/browser -q
    .venv/bin/python tests/browser/readme_screenshots.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARTEFACTS = HERE.parents[1] / "test-artefacts" / "screenshots"
SHOWN = HERE / "screenshots"
README = (  # the artefact (as the tests name it) -> the file the README shows
    ("test_log_on-card-code-asked", "log-on-card-code"),
    ("personal-page", "personal-page"),
    ("communite-receipt-shown", "communite-receipt"),
    ("e-creabis-candidates", "e-creabis-candidates"),
    ("proposals-proposal", "proposals-proposal"),
    ("administration-registered", "administration-officials"),
    ("administration-granted", "administration-grants"),
    ("administration-credentials-card", "administration-credentials"),
)


def main() -> int:
    missing = [name for name, _ in README if not (ARTEFACTS / f"{name}.png").exists()]
    if missing:
        print(f"not in {ARTEFACTS} (run the browser tests first): {', '.join(missing)}", file=sys.stderr)
        return 1
    SHOWN.mkdir(exist_ok=True)
    for name, shown in README:
        shutil.copyfile(ARTEFACTS / f"{name}.png", SHOWN / f"{shown}.png")
        print(f"{SHOWN / shown}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
