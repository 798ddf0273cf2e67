"""Data Docs render styled with the network off (headless Chromium in its own network
namespace): the index lists its validations, a validation page is styled.

Great Expectations' templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and
Vega from CDNs; offline the index was unstyled with an empty list (bootstrap-table builds
it in JavaScript) and validation pages were plain text. quality/offline_docs.py serves
the same files (installed by `make install` from the npm registry) from beside the pages.
"""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest

from quality.offline_docs import ASSETS, VENDOR, assets_installed
from quality.runner import run_quality
from quality.window import Window
from tests.support.browser import offline_render, png_pixels
from tests.support.dagster_seed import BASE, seed_clean
from tests.support.quality_seed import seed, store_settings, trades

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

BLUE, GRAY, GREEN, RED = (0, 123, 255), (108, 117, 125), (40, 167, 69), (220, 53, 69)


def _count(png: bytes, rgb: tuple[int, int, int]) -> int:
    pixels = png_pixels(png)[:, :, :3].reshape(-1, 3)
    return int((pixels == rgb).all(axis=1).sum())


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    assert assets_installed(), "run `make install` (npm ci in quality/datadocs)"
    settings = store_settings(tmp_path_factory.mktemp("docs"))
    seed_clean(settings)
    bad = trades(BASE + timedelta(minutes=3))
    bad[2]["price"] = -1.0  # one failed ERROR expectation to look at
    seed(settings, market_trades=bad)
    run = run_quality(settings, Window(BASE, BASE + timedelta(hours=1)),
                      now=BASE + timedelta(hours=2))
    return run


def test_pages_load_nothing_from_the_internet(docs):
    index = docs.docs_index
    pages = [index] + [r.docs_page for r in docs.results]
    for page in pages:
        html = page.read_text()
        remote = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="(https?://[^"]+)"', html)
        assert remote == [], (page, remote)
        for ref in re.findall(r'(?:src|href)="([^"#?]*static/[^"#?]+)', html):
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    vendor = index.parent / VENDOR
    assert all((vendor / path).is_file() for path in ASSETS.values())
    assert list((vendor / "@fortawesome/fontawesome-free/webfonts").glob("*.woff2"))


def test_index_lists_the_validations_styled_with_the_network_off(docs, tmp_path):
    png, text = offline_render(docs.docs_index, tmp_path, size="1200,1000")
    assert "Showing 1 to 5 of 5 rows" in text, text[:2000]  # bootstrap-table ran
    for suite in ("iot_readings", "market_book_updates", "market_quotes", "market_trades",
                  "ops_ingest_ledger"):
        assert text.count(suite) >= 2, suite  # asset name and suite link per row
    assert _count(png, GREEN) > 200  # Font Awesome's check icons, Bootstrap's colours
    assert _count(png, RED) > 5  # market_trades failed
    assert _count(png, GRAY) > 1000  # the Clear Filters button


def test_a_validation_page_is_styled_with_the_network_off(docs, tmp_path):
    page = next(r.docs_page for r in docs.results if r.suite.name == "market_trades")
    png, text = offline_render(page, tmp_path)
    assert "1 unexpected values found" in text and "Evaluated Expectations 10" in text
    assert _count(png, BLUE) > 2000  # Bootstrap's primary buttons and links
    assert _count(png, RED) > 200  # the failed expectation
    pixels = png_pixels(png)[:, :, :3].reshape(-1, 3)
    assert len(np.unique(pixels[::13], axis=0)) > 50
