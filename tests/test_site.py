"""``make site`` (issue 19, item 6): executed notebooks rendered as a static HTML site, checked in headless Chromium.

The executed notebooks are hand-made with nbformat in ``tmp_path`` (a markdown heading, links between the pages and
to a file of the checkout, a PNG output and a markdown image), so nothing runs papermill. The browser test (skipped
without Chromium, see ``browser.find_chromium``) crawls the site from ``index.html`` offline: every page loads without
errors, every image has decoded pixels, every relative link and same-page anchor resolves.
"""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from browser import find_chromium, headless_chromium
from reid_lab import cli
from reid_lab.tutorial.site import NoExecutedNotebooks, build_site, executed_notebooks

PROFILE = "smoke"


def _png(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_executed(runs: Path, name: str, cells: list, *, finished: bool = True) -> Path:
    """``<runs>/smoke/<name>/<name>.ipynb`` as ``make tutorial`` leaves it (stamp and runtime when it finished)."""
    run_dir = runs / PROFILE / name
    run_dir.mkdir(parents=True)
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"},
                                                    "language_info": {"name": "python"}})
    nbformat.write(notebook, run_dir / f"{name}.ipynb")
    if finished:
        (run_dir / ".fingerprint").write_text("stamp")
        (run_dir / "runtime.json").write_text(json.dumps({"seconds": 42.0, "finished": "2026-12-07 12:00 UTC"}))
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two executed notebooks (the second one's run did not finish), a results table, a checkout file to link."""
    runs, notebooks = tmp_path / "runs", tmp_path / "checkout" / "notebooks"
    notebooks.mkdir(parents=True)
    (tmp_path / "checkout" / "docs").mkdir()
    (tmp_path / "checkout" / "docs" / "guide.md").write_text("# a guide\n")
    png = base64.b64encode(_png(64, 48)).decode()
    first = _write_executed(runs, "00_first", [
        new_markdown_cell("# 00 · The *first* page\n\nOn to [the second](01_second.ipynb#Section-two), "
                          "[the guide](../docs/guide.md), [up](#Results) and [the web](https://example.org).\n\n"
                          "![a saved figure](figure.png)\n\n## Results"),
        new_code_cell("print('hello'); show(figure)", execution_count=1, outputs=[
            new_output("stream", name="stdout", text="hello\n"),
            new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 64x48>"}),
        ]),
    ])
    (first / "figure.png").write_bytes(_png(30, 20))
    _write_executed(runs, "01_second", [
        new_markdown_cell("# 01 · Second\n\n## Section two\n\nBack to [the first](00_first.ipynb)."),
        new_code_cell("1 + 1", execution_count=1, outputs=[
            new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]),
    ], finished=False)
    (runs / PROFILE / "course").mkdir()  # not a notebook's run folder
    table = "| notebook | value |\n|---|---|\n| 00_first | 1.5 |\n"
    (runs / PROFILE / "results.md").write_text(f"# reid_lab results\n\n{table}")
    return runs


def _site(runs: Path, **kwargs) -> Path:
    return build_site(PROFILE, runs_root=runs, notebook_dir=runs.parent / "checkout" / "notebooks", **kwargs)


def _hrefs(page: Path) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', page.read_text())


def test_site_renders_every_executed_notebook_with_figures_navigation_and_an_index(runs):
    out = runs / "site" / PROFILE
    out.mkdir(parents=True)
    (out / "05_gone.html").write_text("a notebook that is no longer run")
    assert [page.name for page in executed_notebooks(PROFILE, runs)] == ["00_first", "01_second"]
    index = _site(runs)
    assert index == out / "index.html"
    assert sorted(p.name for p in out.iterdir()) == ["00_first.html", "01_second.html", "index.html"]

    text = index.read_text()
    assert _hrefs(index)[:2] == ["00_first.html", "01_second.html"]
    assert "00 · The first page" in text and "01 · Second" in text  # titles, markdown emphasis removed
    assert "ran in 42 s" in text and "this run did not finish" in text
    assert "<td>00_first</td>" in text and "reid_lab results" not in text  # results.md as a table, its title dropped

    first = (out / "00_first.html").read_text()
    assert "<title>00 · The first page</title>" in first
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', first)) == 2  # output + markdown image
    assert 'src="figure.png"' not in first and "require.js" not in first
    hrefs = _hrefs(out / "00_first.html")
    assert "01_second.html#Section-two" in hrefs  # notebook links point to pages
    assert "../../../checkout/docs/guide.md" in hrefs  # checkout links re-pointed from notebooks/ to the site
    assert "#Results" in hrefs and "https://example.org" in hrefs
    assert hrefs.count("index.html") == 2 and hrefs.count("01_second.html") == 2  # the bar above and below
    second = (out / "01_second.html").read_text()
    assert "00_first.html" in _hrefs(out / "01_second.html") and "did not finish" in second


def test_site_output_folder_and_cli(runs, tmp_path, capsys):
    assert _site(runs, out=tmp_path / "elsewhere") == tmp_path / "elsewhere" / "index.html"
    assert cli.main(["site", "--profile", PROFILE, "--runs-root", str(runs)]) == 0
    assert (runs / "site" / PROFILE / "index.html").as_uri() in capsys.readouterr().out


def test_no_executed_notebooks_says_to_run_the_tutorial_first(tmp_path, capsys):
    (tmp_path / "runs" / PROFILE / "00_first").mkdir(parents=True)  # a run folder without its executed copy
    with pytest.raises(NoExecutedNotebooks, match=r"run `make tutorial PROFILE=smoke`.* first"):
        build_site(PROFILE, runs_root=tmp_path / "runs")
    assert cli.main(["site", "--profile", "tiny", "--runs-root", str(tmp_path / "empty")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: no executed notebooks in ") and "make tutorial PROFILE=tiny" in error
    assert "Traceback" not in error


_PAGE_REPORT = """(async () => {
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  const links = [...document.querySelectorAll('a[href]')];
  return {
    title: document.title,
    text: document.body ? document.body.innerText.length : 0,
    images: [...document.images].map(img => [img.src.slice(0, 30), img.naturalWidth, img.naturalHeight]),
    links: links.map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(element => element.id),
    missingAnchors: links.filter(a => a.hash && a.origin === location.origin && a.pathname === location.pathname
                                      && !document.getElementById(a.hash.slice(1))  // nbconvert's ids are %-encoded
                                      && !document.getElementById(decodeURIComponent(a.hash.slice(1))))
                         .map(a => a.getAttribute('href')),
  };
})()"""


def crawl_site(index: Path, user_data_dir: Path) -> dict[str, dict]:
    """Open every page reachable from ``index`` by relative links in an offline headless Chromium; assert each one
    loads without errors, shows text, has only decoded images and only links (and anchors) that resolve. Returns
    the pages' reports by URL."""
    index = index.resolve()
    reports: dict[str, dict] = {}
    queue = [index.as_uri()]
    with headless_chromium(user_data_dir) as browser:
        while queue:
            url = queue.pop(0)
            if url in reports:
                continue
            problems = browser.open(url)
            assert not problems, f"{url}: {problems}"
            report = reports[url] = browser.evaluate(_PAGE_REPORT)
            assert report["title"] and report["text"] > 50, (url, report)
            assert all(width > 0 and height > 0 for _, width, height in report["images"]), (url, report["images"])
            assert not report["missingAnchors"], (url, report["missingAnchors"])
            for link in report["links"]:
                target, _ = urldefrag(link)
                if urlsplit(target).scheme != "file":
                    continue
                assert Path(unquote(urlsplit(target).path)).exists(), f"{url}: broken link {link}"
                if target.endswith(".html") and Path(unquote(urlsplit(target).path)).parent == index.parent:
                    queue.append(target)
    for url, report in reports.items():  # links to an anchor of another page
        for link in report["links"]:
            target, fragment = urldefrag(link)
            if fragment and target in reports:
                ids = reports[target]["ids"]
                assert fragment in ids or unquote(fragment) in ids, f"{url}: no anchor for {link}"
    return reports


@pytest.mark.skipif(find_chromium() is None,
                    reason="no Chromium (chromium, chromium-browser, google-chrome or $CHROMIUM)")
def test_site_pages_load_with_their_figures_and_working_links_in_headless_chromium(runs, tmp_path):
    index = _site(runs)
    reports = crawl_site(index, tmp_path / "chromium")
    pages = {Path(unquote(urlsplit(url).path)).name: report for url, report in reports.items()}
    assert sorted(pages) == ["00_first.html", "01_second.html", "index.html"]
    assert pages["00_first.html"]["title"] == "00 · The first page"
    assert sorted(image[1:] for image in pages["00_first.html"]["images"]) == [[30, 20], [64, 48]]
    assert any(link.endswith("/checkout/docs/guide.md") for link in pages["00_first.html"]["links"])
