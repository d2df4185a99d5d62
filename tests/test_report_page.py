"""The report page as a reader sees it: every image loads and nothing overflows a 1280 px window. The static
check always runs; the same check in a real headless browser (Playwright's Chromium) runs where one is installed."""

from html.parser import HTMLParser

import pytest
from PIL import Image

from pipeline.cli import main


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.style = [], ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.style += data


@pytest.fixture(scope="module")
def report_page(tiny_data_template, tmp_path_factory):
    import os
    import shutil

    project = tmp_path_factory.mktemp("report") / "project"
    shutil.copytree(tiny_data_template, project)
    here = os.getcwd()
    os.chdir(project)
    try:
        assert main(["train", "--run", "r", "--config", "smoke", "--set", "train.epochs=1", "--set", "train.tensorboard=false"]) == 0
        assert main(["infer", "--run", "r"]) == 0
        assert main(["report", "--run", "r"]) == 0
    finally:
        os.chdir(here)
    return project / "runs" / "r" / "report" / "index.html"


def test_every_image_of_the_report_exists_and_shrinks_to_the_page(report_page):
    parser = _Images()
    parser.feed(report_page.read_text())
    assert len(parser.sources) >= 5
    for source in parser.sources:
        with Image.open(report_page.parent / source) as image:  # a missing or broken PNG raises here
            image.verify()
    rules = parser.style.replace(" ", "")
    assert "img{max-width:100%;height:auto}" in rules and "overflow-wrap:anywhere" in rules


def test_the_report_in_a_headless_browser_at_1280_px(report_page):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch()
        except Exception as error:  # the package without its browser: `playwright install chromium`
            pytest.skip(f"no Chromium for Playwright ({type(error).__name__})")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(report_page.as_uri(), wait_until="load")
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        widths = page.evaluate("[document.documentElement.scrollWidth, ...Array.from(document.images).map(i => i.getBoundingClientRect().right)]")
        browser.close()
    assert broken == []
    assert max(widths) <= 1280
