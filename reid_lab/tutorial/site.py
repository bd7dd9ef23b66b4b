"""``make site``: the executed notebooks of a profile as a static HTML site (nbconvert's lab template).

:func:`build_site` renders every executed notebook ``<runs>/<profile>/NN_name/NN_name.ipynb`` (what ``make
tutorial`` writes) into ``<runs>/site/<profile>/NN_name.html`` and writes an ``index.html`` that lists the
notebooks in order by their titles (first ``# `` heading), their run times and, when present, the profile's
``results.md`` table. The site lives under ``runs/`` (git-ignored), next to the runs it shows.

The pages are self-contained files: figures (image outputs and markdown images) are embedded as data URIs and the
styles are inlined; each page has a previous / index / next bar. Links between notebooks (``03_x.ipynb``) point to
their pages; other relative links of the notebooks' markdown (``../docs/…``) are re-pointed from ``notebooks/`` to
the checkout's file. Only math needs the network: MathJax loads from its CDN, offline the TeX stays as text.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .. import paths
from .notebook import FINGERPRINT_FILE, NOTEBOOK_DIR, RESULTS_FILE, RUNTIME_FILE, _duration

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

logger = logging.getLogger(__name__)

SITE_DIR = "site"  # <runs>/site/<profile>/
INDEX = "index.html"
_NOTEBOOK_NAME = re.compile(r"^\d\d_[\w.-]+$")

# The lab template without RequireJS (no widget or JavaScript outputs here), plus the navigation bar.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block extra_css %}<style type="text/css">{{ resources.site.css }}</style>{% endblock extra_css %}
{%- block body_header -%}{{ super() }}{{ resources.site.nav }}{%- endblock body_header -%}
{% block body_footer %}{{ resources.site.nav }}{{ super() }}{% endblock body_footer %}
"""
_NAV_CSS = """
nav.site-nav { display: flex; justify-content: space-between; gap: 1em; max-width: 1100px; margin: 0.5em auto;
  padding: 0.5em 1em; font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px;
  border-bottom: 1px solid #ddd; }
nav.site-nav a { text-decoration: none; } nav.site-nav span { color: #999; }
.site-warning { max-width: 1100px; margin: 0.5em auto; padding: 0.5em 1em; background: #fff3cd; }
"""
_INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; line-height: 1.5; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
ul.notebooks li { margin: 0.4em 0; } a.anchor-link { display: none; }
.meta { color: #666; font-size: 90%; } .warning { color: #a15c00; }
"""


class NoExecutedNotebooks(FileNotFoundError):
    """No ``<runs>/<profile>/NN_name/NN_name.ipynb`` exists yet."""


@dataclass(frozen=True)
class Page:
    """One executed notebook and the page it becomes."""

    name: str      # NN_name
    source: Path   # the executed copy
    title: str

    @property
    def html_name(self) -> str:
        return f"{self.name}.html"

    @property
    def finished(self) -> bool:
        """Whether the tutorial run finished it (it writes the stamp only after a successful run)."""
        return (self.source.parent / FINGERPRINT_FILE).is_file()

    def runtime(self) -> dict[str, Any]:
        """Its ``runtime.json`` (seconds, finish time), ``{}`` when there is none."""
        path = self.source.parent / RUNTIME_FILE
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            return {}


def notebook_title(notebook: dict, default: str) -> str:
    """The text of the first ``# `` heading of the notebook's markdown (emphasis removed), else ``default``."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            for line in source.splitlines():
                if line.startswith("# "):
                    return re.sub(r"[*_`]", "", line[2:]).strip() or default
    return default


def executed_notebooks(profile: str = "tiny", runs_root: str | os.PathLike | None = None) -> list[Page]:
    """The executed notebooks of ``<runs>/<profile>/``, in notebook order."""
    folder = paths.runs_root(runs_root) / profile
    pages = []
    for run_dir in sorted(folder.glob("[0-9][0-9]_*")) if folder.is_dir() else []:
        source = run_dir / f"{run_dir.name}.ipynb"
        if _NOTEBOOK_NAME.match(run_dir.name) and source.is_file():
            notebook = json.loads(source.read_text(encoding="utf-8"))
            pages.append(Page(run_dir.name, source, notebook_title(notebook, run_dir.name)))
    return pages


def _nav(pages: list[Page], index: int) -> str:
    """The previous / index / next bar of page ``index``."""
    def link(i: int, arrow: str) -> str:
        if 0 <= i < len(pages):
            rel, page = "prev" if i < index else "next", pages[i]
            return f'<a href="{page.html_name}" rel="{rel}">{arrow} {html.escape(page.title)}</a>'
        return "<span></span>"

    return (f'<nav class="site-nav">{link(index - 1, "&larr;")}<a href="{INDEX}">index</a>'
            f'{link(index + 1, "&rarr;")}</nav>')


def _relink(page_html: str, names: set[str], notebook_dir: Path, out: Path) -> str:
    """Point links to notebooks at their pages and other relative links at the checkout's files."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html, features="html.parser")
    pages, changed = {INDEX, *(f"{name}.html" for name in names)}, False
    for anchor in soup.select("a[href]"):
        href = anchor["href"]
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
            continue  # absolute URLs, same-page anchors and absolute paths stay
        target = unquote(parts.path)
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        stem = Path(target).name.removesuffix(".ipynb")
        if target in pages:
            continue  # the navigation bar's links
        if target.endswith(".ipynb") and stem in names:
            anchor["href"] = f"{stem}.html{fragment}"
        elif (notebook_dir / target).exists():
            anchor["href"] = Path(os.path.relpath(notebook_dir / target, out)).as_posix() + fragment
        else:
            logger.warning("%s: link target %s not found next to the notebooks", anchor.get_text(), href)
            continue
        changed = True
    return str(soup) if changed else page_html


def _exporter() -> "HTMLExporter":
    """nbconvert's HTMLExporter with the lab template, markdown images embedded, without RequireJS."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    quiet = logging.getLogger(f"{__name__}.nbconvert")
    quiet.setLevel(logging.ERROR)  # it warns once per figure that outputs have no alt text
    return HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"reid_site.html.j2": _TEMPLATE})],
                        template_file="reid_site.html.j2", embed_images=True, theme="light", log=quiet)


def _index(pages: list[Page], profile: str, results: Path) -> str:
    """``index.html``: the notebooks in order, with their run times, and the profile's results table."""
    items = []
    for page in pages:
        runtime = page.runtime()
        meta = [page.name]
        if runtime.get("seconds") is not None:
            meta.append(f"ran in {_duration(runtime['seconds'])}")
        if runtime.get("finished"):
            meta.append(f"finished {runtime['finished']}")
        warning = "" if page.finished else ' <span class="warning">(this run did not finish)</span>'
        items.append(f'<li><a href="{page.html_name}">{html.escape(page.title)}</a>{warning}'
                     f'<br><span class="meta">{html.escape(" · ".join(meta))}</span></li>')
    table = ""
    if results.is_file():
        from nbconvert.filters.markdown import markdown2html_mistune

        text = re.sub(r"\A# .*\n", "", results.read_text(encoding="utf-8"))  # its title: the h2 says it
        table = f"<h2>Results</h2>\n{markdown2html_mistune(text)}"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f"<title>reid_lab tutorial ({html.escape(profile)} profile)</title>\n<style>{_INDEX_CSS}</style>\n"
            f"</head>\n<body>\n<h1>reid_lab tutorial: the executed notebooks ({html.escape(profile)} profile)</h1>\n"
            f"<p>Rendered from <code>runs/{html.escape(profile)}/</code> by <code>make site</code>; re-run "
            f"<code>make tutorial</code> and then <code>make site</code> to refresh.</p>\n"
            f'<ul class="notebooks">\n' + "\n".join(items) + f"\n</ul>\n{table}\n</body>\n</html>\n")


def build_site(profile: str = "tiny", runs_root: str | os.PathLike | None = None,
               out: str | os.PathLike | None = None, *,
               notebook_dir: str | os.PathLike | None = None) -> Path:
    """Render the executed notebooks of ``<runs>/<profile>/`` into a static site; return its ``index.html``.

    Args:
        profile: whose executed notebooks (``runs/<profile>/``).
        runs_root: the runs folder (default: ``$REID_LAB_RUNS`` or ``runs/``).
        out: the site's folder (default: ``<runs>/site/<profile>``); pages of notebooks that are gone are removed.
        notebook_dir: the folder the notebooks' relative links start from (default: ``notebooks/``).

    Raises:
        NoExecutedNotebooks: ``<runs>/<profile>/`` holds no executed notebook.
    """
    import nbformat

    pages = executed_notebooks(profile, runs_root)
    folder = paths.runs_root(runs_root) / profile
    if not pages:
        raise NoExecutedNotebooks(f"no executed notebooks in {folder}: run `make tutorial PROFILE={profile}` "
                                  f"(or `reid-lab tutorial --profile {profile}`) first")
    out = Path(out).expanduser().resolve() if out else paths.runs_root(runs_root) / SITE_DIR / profile
    notebook_dir = Path(notebook_dir or NOTEBOOK_DIR).resolve()
    out.mkdir(parents=True, exist_ok=True)
    exporter, names = _exporter(), {page.name for page in pages}
    for index, page in enumerate(pages):
        notebook = nbformat.read(page.source, as_version=4)
        nav = _nav(pages, index)
        if not page.finished:
            nav += ('<p class="site-warning">This notebook\'s last run did not finish: the page shows it up to the '
                    "failing cell. Re-run <code>make tutorial</code>.</p>")
        resources = {"metadata": {"name": page.title, "path": str(page.source.parent)},
                     "site": {"nav": nav, "css": _NAV_CSS}}
        body, _ = exporter.from_notebook_node(notebook, resources=resources)
        (out / page.html_name).write_text(_relink(body, names, notebook_dir, out), encoding="utf-8")
    for stale in out.glob("[0-9][0-9]_*.html"):
        if stale.stem not in names:
            stale.unlink()
    index_path = out / INDEX
    index_path.write_text(_index(pages, profile, folder / RESULTS_FILE), encoding="utf-8")
    logger.info("site of %d notebooks written to %s", len(pages), out)
    return index_path


__all__ = ["NoExecutedNotebooks", "Page", "build_site", "executed_notebooks", "notebook_title"]
