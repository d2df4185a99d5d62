"""The report page as a reader sees it. The static check always runs; the same page in a real headless Chromium
(Playwright driving the system browser) runs wherever one is installed, and must run in CI (CI=true: a missing
browser is a failure, not a skip): every image loaded and inside the window at 1280 and 390 px, no console
errors, the score and submission first, every file link resolving. A screenshot lands in the test's folder."""

import contextlib
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from pipeline.cli import main

INSTALL = "install Debian's chromium (apt-get install chromium) and `./run.sh test` installs playwright (requirements-dev.txt)"


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


@pytest.fixture(scope="module")
def report_page(tiny_data_template, tmp_path_factory):
    project = tmp_path_factory.mktemp("report") / "project"
    shutil.copytree(tiny_data_template, project)
    with contextlib.chdir(project):  # the stages read and write relative to the project
        assert main(["train", "--run", "r", "--config", "smoke", "--set", "train.epochs=1", "--set", "train.tensorboard=false"]) == 0
        assert main(["infer", "--run", "r"]) == 0
        assert main(["submit", "--run", "r"]) == 0
        submission = str(next(Path("submissions").glob("r-*.csv")))
        assert main(["summary", "--run", "r", "--submission", submission, "--truth", "data/test_truth.csv"]) == 0
        assert main(["report", "--run", "r"]) == 0
    return project / "runs" / "r" / "report" / "index.html"


def test_every_image_of_the_report_exists_and_is_a_valid_png(report_page):
    parser = _Images()
    parser.feed(report_page.read_text())
    assert len(parser.sources) >= 5
    for source in parser.sources:
        with Image.open(report_page.parent / source) as image:  # a missing or broken PNG raises here
            image.verify()
    # whether they fit a 390 px window is measured in the browser (test_the_page_in_a_real_browser...), not read off the CSS


def _chromium() -> str:
    """The system Chromium's path; a skip outside CI, a failure in CI, when there is none (or no playwright)."""
    found = os.environ.get("CHROMIUM") or next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no headless browser for the report page test: {INSTALL}")
        pytest.skip(f"no Chromium/playwright here: {INSTALL}")
    return found


def look_at(page_path: Path, width: int, screenshot: Path | None = None) -> dict:
    """Open the page in headless Chromium at a window `width` px wide; what a reader would see."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        page.goto(page_path.as_uri(), wait_until="load")
        seen = page.evaluate("""() => ({
            first: document.body.firstElementChild.tagName + ': ' + document.body.firstElementChild.innerText,
            images: Array.from(document.images).map(i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0,
                                                           right: i.getBoundingClientRect().right})),
            scroll_width: document.documentElement.scrollWidth,
            links: Array.from(document.links).map(a => a.href),
        })""")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return seen | {"errors": errors}


@pytest.mark.parametrize("width", [1280, 390])
def test_the_report_in_a_headless_browser(report_page, width, tmp_path):
    shots = Path(os.environ.get("REPORT_SCREENSHOTS", tmp_path))  # REPORT_SCREENSHOTS=docs/report: the README's pictures
    shots.mkdir(parents=True, exist_ok=True)
    seen = look_at(report_page, width, screenshot=shots / f"report-{width}.png")
    assert seen["errors"] == []
    assert seen["first"].startswith("H1: local test score 0.") and "submission: submissions/r-" in seen["first"]
    assert len(seen["images"]) >= 5 and all(image["loaded"] for image in seen["images"]), seen["images"]
    assert max(image["right"] for image in seen["images"]) <= width
    assert seen["scroll_width"] <= width  # nothing wider than the window: no sideways scrolling
    targets = [Path(unquote(urlparse(link).path)) for link in seen["links"]]
    assert {t.name for t in targets} >= {"config.yaml", "postprocess.json", "summary.json", "metrics.csv"}
    assert any(t.suffix == ".csv" and t.parent.name == "submissions" for t in targets)
    assert all(t.is_file() for t in targets), [t for t in targets if not t.is_file()]
    assert (shots / f"report-{width}.png").stat().st_size > 10_000
