"""Write the environment pages of the docs site from the code, so they cannot drift from it.

One page per family (``docs/envs/<family>.md``) and one per registered ID
(``docs/envs/ids/<name>.md``), from ``sysgym.ENVIRONMENTS``, ``gymnasium.make(id)`` (spaces,
reward components and weights, metric and feature names, time limit), each family's
``build_config`` signature (every kwarg and its default) and its package docstring (the kwarg
ranges, the dynamics spec and the references), plus the hand-written overview in
``docs/families/<family>.md`` when there is one. Run by the mkdocs hook (``docs/hooks.py``) on
every build; ``python docs/gen_pages.py`` writes the pages alone.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
OUT = DOCS / "envs"
sys.path.insert(0, str(DOCS))
from make_media import EPISODES  # noqa: E402  (the episode each family's animation shows)

FEATURES_SHOWN = 60        # longer feature lists show their first names and the count


@dataclass(frozen=True)
class Family:
    key: str          # package under sysgym.envs, also the page and media name
    title: str


FAMILIES = (
    Family("deeprm", "DeepRM cluster scheduling"),
    Family("dag", "DAG task scheduling by edge generation (EGS)"),
    Family("abr", "ABR video streaming over replayed traces"),
    Family("cc", "Congestion control (CC)"),
    Family("appointments", "Appointment scheduling (strategy learning P1-P3)"),
)


def family_key(entry_point: str) -> str:
    """``"sysgym.envs.deeprm:DeepRMEnv"`` -> ``"deeprm"``."""
    return entry_point.split(":", 1)[0].split(".")[2]


# ------------------------------------------------------------------ docstring -> Markdown
_HEADING_RULE = re.compile(r"^\s*(-{3,}|={3,})\s*$")
_TABLE_RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")
_ALIGNED = re.compile(r"\S {3,}\S")
_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data):`~?([^`]+)`")


def _inline(text: str) -> str:
    """RST roles and double backticks as Markdown code; ``a[i][j]`` is not a reference link."""
    parts = _ROLE.sub(r"`\1`", text).replace("``", "`").split("`")
    return "`".join(p if k % 2 else p.replace("][", "]\\[") for k, p in enumerate(parts))


def rst_table_markdown(block: list[str]) -> str | None:
    """An RST simple table (``====  ====`` rules) as a Markdown table; a row whose first cell is
    blank continues the row above. None when ``block`` is not exactly one such table."""
    if len(block) < 4 or not (_TABLE_RULE.match(block[0]) and _TABLE_RULE.match(block[-1])):
        return None
    starts = [m.start() for m in re.finditer(r"=+", block[0])]
    rules = [k for k, line in enumerate(block) if _TABLE_RULE.match(line)]
    if len(rules) != 3:
        return None
    rows: list[list[str]] = []
    for k, line in enumerate(block):
        if k in rules:
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        if rows and k > rules[1] + 1 and not cells[0]:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    n_head = rules[1] - rules[0] - 1
    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(_inline(c).replace("|", "\\|") for c in row) + " |"
    lines = [fmt(r) for r in rows[:n_head]] + ["|" + "---|" * len(starts)] + [fmt(r) for r in rows[n_head:]]
    return "\n".join(lines)


def docstring_markdown(doc: str, level: int = 3) -> str:
    """A package docstring as Markdown: underlined titles become headings, column-aligned blocks
    (RST tables, kwarg lists) stay preformatted, prose keeps its words with inline code marks."""
    lines = inspect.cleandoc(doc).splitlines()
    blocks: list[list[str]] = [[]]
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _HEADING_RULE.match(nxt) and not _TABLE_RULE.match(line) \
                and not _HEADING_RULE.match(line):
            blocks.append([f"{'#' * level} {_inline(line.strip())}"])
            blocks.append([])
            i += 2
            continue
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
        i += 1
    for block in blocks:
        if not block:
            continue
        if block[0].startswith("#"):
            out.append(block[0])
        elif (table := rst_table_markdown(block)) is not None:
            out.append(table)
        elif any(_TABLE_RULE.match(b) or _ALIGNED.search(b.strip()) for b in block):
            out.append("```text\n" + "\n".join(block) + "\n```")
        else:
            out.append(_inline("\n".join(block)))
    return "\n\n".join(out) + "\n"


# ------------------------------------------------------------------ pages
def _code(value: object) -> str:
    text = repr(value).replace("|", "\\|")
    return f"`{text}`"


def _env_facts(env_id: str) -> dict:
    import warnings

    import gymnasium as gym

    with warnings.catch_warnings():   # an old version warns that a newer one exists: said on its page
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
    try:
        u = env.unwrapped
        return {
            "observation_space": str(env.observation_space),
            "action_space": str(env.action_space),
            "reward_components": list(u.reward_components),
            "reward_weights": [float(w) for w in u.reward_weights],
            "metric_names": list(getattr(u, "metric_names", ())),
            "feature_names": list(getattr(u, "feature_names", ())),
            "max_episode_steps": env.spec.max_episode_steps if env.spec else None,
            "render_modes": list(env.metadata.get("render_modes", [])),
        }
    finally:
        env.close()


def _reward_table(facts: dict) -> list[str]:
    rows = ["| component | weight |", "|---|---|"]
    rows += [f"| `{c}` | {w:g} |" for c, w in zip(facts["reward_components"], facts["reward_weights"])]
    return rows


def _features(facts: dict) -> list[str]:
    names = facts["feature_names"]
    shown = ", ".join(f"`{n}`" for n in names[:FEATURES_SHOWN])
    more = f", ... ({len(names)} in all)" if len(names) > FEATURES_SHOWN else ""
    return [f"**Feature names** ({len(names)}, aligned with the flattened observation): {shown}{more}"]


def newer_version(entry, entries: list) -> str | None:
    """The newest registered ID of ``entry``'s name with a higher version, if any."""
    base, _, version = entry.name.rpartition("-v")
    newer = [e for e in entries if e.name.rpartition("-v")[0] == base
             and int(e.name.rpartition("-v")[2]) > int(version)]
    return max(newer, key=lambda e: int(e.name.rpartition("-v")[2])).id if newer else None


def id_page(entry, facts: dict, family: Family, baselines: list[str], newer: str | None = None) -> str:
    """The page of one registered ID."""
    kwargs = ", ".join(f"`{k}={v!r}`" for k, v in entry.kwargs.items()) or "none (the family defaults)"
    superseded = ['!!! note "Superseded"', "",
                  f"    [{newer}]({newer.split('/', 1)[1]}.md) is the newer version. `{entry.id}` stays "
                  "registered with the behaviour it had, so results made with it reproduce; Gymnasium "
                  "warns that a newer version exists.", ""] if newer else []
    lines = [
        f"# {entry.id}", "", *superseded,
        f"{entry.description}.", "",
        f"Family: [{family.title}](../{family.key}.md) (spec, every kwarg, animation).", "",
        "```python",
        "import gymnasium as gym",
        "import sysgym  # registers the IDs",
        "",
        f'env = gym.make("{entry.id}")',
        f'vec = gym.make_vec("{entry.id}", num_envs=8, vectorization_mode="vector_entry_point")',
        "```", "",
        "| | |", "|---|---|",
        f"| registered kwargs | {kwargs} |",
        f"| observation space | `{facts['observation_space']}` |",
        f"| action space | `{facts['action_space']}` |",
        f"| time limit (max_episode_steps) | {facts['max_episode_steps']} |",
        f"| render modes | {', '.join(facts['render_modes'])} |",
        f"| entry point | `{entry.entry_point}` |",
        f"| vector entry point | `{entry.vector_entry_point}` |",
        f"| baselines (`sysgym.agents.heuristics`) | {', '.join(baselines) or 'none'} |",
        "",
        "## Reward",
        "",
        "`info[\"reward_components\"] @ env.unwrapped.reward_weights == reward` at every step.",
        "", *_reward_table(facts), "",
        "## Episode metrics",
        "",
        "`info[\"episode_metrics\"]` at the end of an episode: "
        + ", ".join(f"`{m}`" for m in facts["metric_names"]) + ".", "",
        "## Features", "", *_features(facts), "",
    ]
    return "\n".join(lines)


def family_page(family: Family, entries: list, facts: dict[str, dict], baselines: list[str]) -> str:
    """The page of one family: overview, animation, IDs, kwargs, then the package docstring."""
    pkg = importlib.import_module(f"sysgym.envs.{family.key}")
    cfg = importlib.import_module(f"sysgym.envs.{family.key}.config")
    params = inspect.signature(cfg.build_config).parameters.values()
    title, overview = family.title, ""
    path = DOCS / "families" / f"{family.key}.md"
    if path.exists():   # the hand-written part; its "# " title, if any, is the page's title
        overview = path.read_text().strip()
        if overview.startswith("# "):
            title, _, overview = overview.partition("\n")
            title = title[2:].strip()
    lines = [f"# {title}", "", overview, ""]
    env_id, policy, _, _, seed, kwargs = EPISODES[family.key]
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    lines += [
        f"![An episode of {env_id} with the {policy} baseline acting](../media/{family.key}.gif)", "",
        f"*An episode of `{env_id}`{f' ({shown})' if shown else ''}, seed {seed}, with the `{policy}` "
        "heuristic acting, drawn by the env's own `rgb_array` render (`docs/make_media.py`).*", "",
        "## Registered IDs", "",
        "| ID | registered kwargs | observation space | action space | reward components (weights) |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        f = facts[e.id]
        kw = ", ".join(f"`{k}={v!r}`" for k, v in e.kwargs.items()) or "defaults"
        rew = ", ".join(f"`{c}` ({w:g})" for c, w in zip(f["reward_components"], f["reward_weights"]))
        lines.append(f"| [{e.id}](ids/{e.name}.md) | {kw} | `{f['observation_space']}` | "
                     f"`{f['action_space']}` | {rew} |")
    first = facts[entries[0].id]
    lines += [
        "", f"Baselines in `sysgym.agents.heuristics`: {', '.join(f'`{b}`' for b in baselines) or 'none'}.",
        "", "Episode metrics (`info[\"episode_metrics\"]`): "
        + ", ".join(f"`{m}`" for m in first["metric_names"]) + ".", "",
        "## Every kwarg and its default", "",
        f"From the signature of `sysgym.envs.{family.key}.config.build_config`; the ranges and "
        "meanings are in the specification below. A value outside its range is a `ValueError` "
        "naming the kwarg.", "",
        "| kwarg | default |", "|---|---|",
    ]
    lines += [f"| `{p.name}` | {_code(p.default)} |" for p in params]
    lines += ["", "## Specification", "",
              f"*The package docstring of `sysgym.envs.{family.key}`, rendered as it is in the code.*", "",
              docstring_markdown(pkg.__doc__)]
    return "\n".join(lines)


def index_page(entries: list) -> str:
    lines = ["# Environments", "",
             "Every registered ID (`sysgym list` prints the same table). Each family page has the "
             "specification, every kwarg and an animation; each ID page its spaces and reward.", "",
             "| ID | family | description |", "|---|---|---|"]
    titles = {f.key: f.title for f in FAMILIES}
    for e in entries:
        key = family_key(e.entry_point)
        lines.append(f"| [{e.id}](ids/{e.name}.md) | [{titles[key]}]({key}.md) | {e.description} |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Write only when the text changed (``mkdocs serve`` watches the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate() -> list:
    """Write every page; return the nav section for mkdocs."""
    from sysgym import ENVIRONMENTS
    from sysgym.agents.heuristics import heuristics_for

    facts = {e.id: _env_facts(e.id) for e in ENVIRONMENTS}
    _write(OUT / "index.md", index_page(ENVIRONMENTS))
    nav: list = [{"All environments": "envs/index.md"}]
    known = {f.key for f in FAMILIES}
    unknown = {family_key(e.entry_point) for e in ENVIRONMENTS} - known
    if unknown:
        raise ValueError(f"docs/gen_pages.py: no family entry for {sorted(unknown)}; add it to FAMILIES")
    no_episode = known - set(EPISODES)
    if no_episode:
        raise ValueError(f"docs/make_media.py: no episode for {sorted(no_episode)}; add it to EPISODES")
    for family in FAMILIES:
        entries = [e for e in ENVIRONMENTS if family_key(e.entry_point) == family.key]
        baselines = list(heuristics_for(entries[0].id))
        _write(OUT / f"{family.key}.md", family_page(family, entries, facts, baselines))
        ids = []
        for e in entries:
            _write(OUT / "ids" / f"{e.name}.md", id_page(e, facts[e.id], family, list(heuristics_for(e.id)),
                                                          newer_version(e, ENVIRONMENTS)))
            ids.append({e.id: f"envs/ids/{e.name}.md"})
        nav.append({family.title: [{"Overview and spec": f"envs/{family.key}.md"}, *ids]})
    return nav


if __name__ == "__main__":
    generate()
    print(f"wrote {OUT}", file=sys.stderr)
