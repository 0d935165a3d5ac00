"""The docs generator and the frame captions: pages come from the code, and the code documents
every kwarg it takes. The site build and the browser check run in `make docs-check` (CI)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sysgym import ENVIRONMENTS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load(name: str):
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(DOCS))


gen_pages = _load("gen_pages")
make_media = _load("make_media")


def test_docstring_becomes_markdown():
    doc = """Title line.

    Kwargs (ranges)
    ---------------
    =====  =======
    kwarg  default
    =====  =======
    a      1 | 2
           (or 3)
    b      ``x``
    =====  =======

    *State.* see :mod:`sysgym.envs.bandwidth` and ``used[r][t]``; used[r][now] grows.
    """
    md = gen_pages.docstring_markdown(doc)
    blocks = md.strip().split("\n\n")
    assert blocks[0] == "Title line."
    assert blocks[1] == "### Kwargs (ranges)"
    # an RST simple table becomes a Markdown table; a blank first cell continues the row above
    assert blocks[2] == "| kwarg | default |\n|---|---|\n| a | 1 \\| 2 (or 3) |\n| b | `x` |"
    # roles and double backticks become code; [x][y] outside code is escaped (not a reference link)
    assert blocks[3] == "*State.* see `sysgym.envs.bandwidth` and `used[r][t]`; used[r]\\[now] grows."


def test_aligned_kwarg_lists_stay_preformatted():
    md = gen_pages.docstring_markdown("chunk_s         4.0, in [0.001, 3600]\nrtt_s           0.08")
    assert md.startswith("```text\n") and "rtt_s           0.08" in md


@pytest.mark.parametrize("family", [f.key for f in gen_pages.FAMILIES])
def test_every_kwarg_is_documented_in_the_family_spec(family):
    """The family page shows the package docstring as the spec: every kwarg build_config takes
    must be named there, so a new kwarg cannot reach the site undocumented."""
    doc = importlib.import_module(f"sysgym.envs.{family}").__doc__
    config = importlib.import_module(f"sysgym.envs.{family}.config")
    names = inspect.signature(config.build_config).parameters
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", doc)]
    assert not missing, f"sysgym.envs.{family} docstring does not document {missing}"


def test_every_registered_id_has_a_family_page_and_an_animation():
    keys = {gen_pages.family_key(e.entry_point) for e in ENVIRONMENTS}
    assert keys == {f.key for f in gen_pages.FAMILIES} == set(make_media.EPISODES)
    assert gen_pages.family_key("sysgym.envs.deeprm:DeepRMEnv") == "deeprm"
    ids = {e.id for e in ENVIRONMENTS}
    for env_id, policy, *_ in make_media.EPISODES.values():
        from sysgym.agents.heuristics import heuristics_for
        assert env_id in ids and policy in heuristics_for(env_id)


def test_caption_band_sits_above_the_unchanged_picture():
    pytest.importorskip("PIL")
    from sysgym.envs.frame_text import BAND, with_caption
    picture = np.full((20, 200, 3), 250, dtype=np.uint8)
    out = with_caption(picture, ["t=3 chose 2", "top: rate"])
    assert out.shape == (20 + 2 * 16, 200, 3) and out.dtype == np.uint8
    assert np.array_equal(out[32:], picture)
    band = out[:32]
    dark = (band.astype(int).sum(axis=2) < 300)
    assert dark[:16].any() and dark[16:].any()           # text on both lines
    assert (band[:, -20:] == BAND).all()                  # short lines leave the right end blank


def test_family_page_lists_ids_kwargs_and_the_spec():
    family = gen_pages.FAMILIES[0]
    entries = [e for e in ENVIRONMENTS if gen_pages.family_key(e.entry_point) == family.key]
    facts = {e.id: gen_pages._env_facts(e.id) for e in entries}
    page = gen_pages.family_page(family, entries, facts, ["sjf"])
    for e in entries:
        assert f"[{e.id}](ids/{e.name}.md)" in page
    assert "| `window` | `10` |" in page                  # DeepRM's window default, W = 10 (HotNets'16)
    assert f"](../media/{family.key}.gif)" in page and "## Specification" in page
    assert "*Transitions.*" in page                        # the dynamics spec is on the page


def test_an_old_version_points_to_the_newer_one():
    from types import SimpleNamespace as E
    entries = [E(name="X-v0", id="sysgym/X-v0"), E(name="X-v2", id="sysgym/X-v2"),
               E(name="X-v1", id="sysgym/X-v1"), E(name="XY-v3", id="sysgym/XY-v3")]
    assert gen_pages.newer_version(entries[0], entries) == "sysgym/X-v2"
    assert gen_pages.newer_version(entries[1], entries) is None
    assert gen_pages.newer_version(entries[3], entries) is None
