"""mkdocs hook: write the generated environment pages before mkdocs collects the files, put them
in the nav where ``mkdocs.yml`` has the ``Environments`` placeholder, and lay out the ``sysgym``
package for mkdocstrings as setup.py installs it (``envs/``, ``agents/`` and ``cython_core/`` are
``sysgym.envs``, ``sysgym.agents`` and ``sysgym.cython_core``) with symlinks under
``build/docs-src``, so the API pages read the sources statically. The figures and result files
the benchmarks commit under ``benchmarks/results/`` join the site at the same path, so a page links
them as ``benchmarks/results/...`` relative to the page (``../benchmarks/...`` from a page in a
sub-folder); a missing one is a broken link and fails the strict build. Results tables in Markdown
become pages outside the nav (``not_in_nav`` in mkdocs.yml)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_pages  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"envs": "envs", "agents": "agents", "cython_core": "cython_core"}
RESULTS = "benchmarks/results"
RESULT_TYPES = {".png", ".svg", ".gif", ".json", ".csv", ".txt", ".md"}   # .md: results tables as pages


def package_tree() -> None:
    """build/docs-src/sysgym: a link to every entry of sysgym/ plus the mapped subpackages."""
    tree = ROOT / "build" / "docs-src" / "sysgym"
    tree.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in (ROOT / "sysgym").iterdir() if p.name != "__pycache__"}
    links.update({name: ROOT / src for name, src in MAPPED.items()})
    for name, target in links.items():
        link = tree / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def on_startup(command, dirty):
    # before mkdocstrings' own on_config, which keeps only the search paths that already exist
    package_tree()


def on_config(config):
    section = gen_pages.generate()
    for k, item in enumerate(config["nav"]):
        if isinstance(item, dict) and "Environments" in item:
            config["nav"][k] = {"Environments": section}
            return config
    raise ValueError("mkdocs.yml: the nav has no 'Environments' entry for the generated pages")


def on_files(files, config):
    from mkdocs.structure.files import File

    for path in sorted((ROOT / RESULTS).rglob("*")):
        if path.is_file() and path.suffix in RESULT_TYPES:
            rel = path.relative_to(ROOT).as_posix()
            if files.get_file_from_path(rel) is None:
                files.append(File(rel, src_dir=str(ROOT), dest_dir=config["site_dir"],
                                  use_directory_urls=config["use_directory_urls"]))
    return files
