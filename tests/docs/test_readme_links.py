"""The README is the landing page: every relative link in it must reach a file or folder of the
repository (docs pages, results), and every in-page anchor a heading, as GitHub renders them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_github_slug_matches_githubs_rule():
    # GitHub keeps the double hyphen where "&" was dropped between two spaces
    assert github_slug("Strategy learning: Taub & Pianykh, PLoS ONE 2022") == \
        "strategy-learning-taub--pianykh-plos-one-2022"
    assert github_slug("Using sysgym with ...") == "using-sysgym-with-"


def _links(text: str) -> list[str]:
    body = re.sub(r"```.*?```", "", text, flags=re.S)      # no links inside code blocks
    return [m.group(1) for m in LINK.finditer(body)]


def test_every_readme_link_resolves():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}
    broken = []
    for target in _links(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(target)
        elif not (ROOT / path).exists():
            broken.append(target)
    assert not broken, f"README.md links that reach nothing: {broken}"
