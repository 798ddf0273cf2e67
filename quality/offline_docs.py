"""Data Docs that render offline: the CDN files GX's templates load, served from beside the pages.

Great Expectations' Data Docs templates (index_page.j2, page.j2, js_script_imports.j2)
load Bootstrap, jQuery, Popper, bootstrap-table, bootstrap-datepicker, Font Awesome and
Vega from CDNs, and its navbar logo from S3; without internet the index is unstyled
with empty lists (bootstrap-table builds them in JavaScript) and validation pages are
plain text. `make install` installs the same versions from the npm registry into
`quality/datadocs/node_modules` (package.json and its lock file beside it). After each
Data Docs build, `make_offline` copies the files the pages use into
`<data_docs>/static/vendor/` and rewrites the pages' CDN addresses into relative paths
(integrity and crossorigin attributes go: they only apply to cross-origin fetches). The
logo comes from GX's own `static/images/`, which its site builder copies already; every
`static/` reference is made relative to the page's own depth (GX's validation pages point
their favicon one folder too high).

Without node_modules (npm not installed) pages keep their CDN addresses and work online.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

NODE_MODULES = Path(__file__).resolve().parent / "datadocs" / "node_modules"
VENDOR = Path("static") / "vendor"

# CDN address (as GX 1.x templates write it) -> file under node_modules
ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        "popper.js/dist/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    # the templates ask 1.19.0 for the filter-control style sheets; 1.19.1's are the same rules
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# folders a style sheet loads by relative path (Font Awesome's ../webfonts/)
FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)
LOGO_BASE = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_URL = re.compile("|".join(re.escape(u) for u in sorted(ASSETS, key=len, reverse=True)))
_SRI = re.compile(r'\s+(?:integrity="[^"]*"|crossorigin="[^"]*")')


def assets_installed(node_modules: Path = NODE_MODULES) -> bool:
    return all((node_modules / path).is_file() for path in ASSETS.values())


def copy_assets(docs_dir: Path, node_modules: Path = NODE_MODULES) -> None:
    """The vendored files under `<docs_dir>/static/vendor/` (skipped when already there)."""
    vendor = docs_dir / VENDOR
    for path in (*ASSETS.values(), *FOLDERS):
        source, target = node_modules / path, vendor / path
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


def rewrite_page(page: Path, docs_dir: Path) -> bool:
    """CDN addresses in `page` -> relative paths into static/; True when it changed."""
    html = page.read_text(encoding="utf-8")
    if "https://" not in html:
        return False
    up = os.path.relpath(docs_dir, page.parent)
    prefix = "" if up == "." else up + "/"

    def local(match: re.Match) -> str:
        return f"{prefix}{VENDOR.as_posix()}/{ASSETS[match.group(0)]}"

    # GX writes one "../" too few for its own static files on validation pages (favicon)
    new = re.sub(r'((?:src|href)=")(?:\.\./)*static/', lambda m: f"{m.group(1)}{prefix}static/", html)
    new = _URL.sub(local, new)
    new = new.replace(LOGO_BASE, f"{prefix}static/images/")
    new = _SRI.sub("", new)
    if new == html:
        return False
    page.write_text(new, encoding="utf-8")
    return True


def make_offline(docs_dir: Path, since: float = 0.0, node_modules: Path = NODE_MODULES) -> int:
    """Make the Data Docs pages written at or after `since` (epoch s) load everything from
    `docs_dir`; returns how many pages changed (0 without the npm assets, logged once)."""
    if not assets_installed(node_modules):
        log.warning("Data Docs keep their CDN links: %s is not installed (make install "
                    "runs npm ci there)", node_modules)
        return 0
    copy_assets(docs_dir, node_modules)
    changed = 0
    for page in docs_dir.rglob("*.html"):
        if page.stat().st_mtime >= since and rewrite_page(page, docs_dir):
            changed += 1
    return changed
