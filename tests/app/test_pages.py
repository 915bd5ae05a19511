"""The planners' page in a real browser: `migration-abm app` served on 127.0.0.1, driven by Playwright
with the system (Debian) Chromium, offline. The tests run in order on one browser session (the
app's state is per session): Scenario → Compare → Map → Siting → Runs.

Screenshots and measured times go to results/app_review/ for review.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REVIEW = REPO / "results" / "app_review"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRE = os.environ.get("MIGRATION_ABM_REQUIRE_BROWSER") == "1"

if CHROMIUM is None and not REQUIRE:
    pytest.skip("no system Chromium: install it with `apt-get install -y chromium` (as root, `.ci/run` "
                "does) to run the browser tests", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[app]')")

TIMINGS: dict[str, float] = {}
IGNORED_CONSOLE = ("Failed to evaluate Vue script",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The app served from a fresh results folder (holding one CLI run file, for the Runs page)."""
    assert CHROMIUM is not None, "MIGRATION_ABM_REQUIRE_BROWSER=1 but no chromium on PATH"
    results = tmp_path_factory.mktemp("app_results")
    subprocess.run([sys.executable, "-m", "migration_abm", "-q", "run", str(REPO / "configs" / "baseline.toml"),
                    "--set", "run.households_per_agent=2000", "--set", "run.end_year=2025",
                    "--out", str(results / "cli_run.h5")], check=True, cwd=REPO)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(results / "server.log", "w")  # noqa: SIM115 - closed at teardown
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "migration_abm", "app", "--port", str(port), "--results",
                             str(results)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {(results / 'server.log').read_text()}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not answer within 60 s")
        TIMINGS["server_start_s"] = time.perf_counter() - t0
        yield url, results
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        REVIEW.mkdir(parents=True, exist_ok=True)
        (REVIEW / "timings.json").write_text(json.dumps({k: round(v, 2) for k, v in TIMINGS.items()}, indent=2))


@pytest.fixture(scope="module")
def page(server):
    url, _ = server
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
        pg = ctx.new_page()
        pg.errors = []
        pg.on("console", lambda m: m.type == "error" and pg.errors.append(f"console: {m.text}"))
        pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
        pg.on("requestfailed", lambda r: pg.errors.append(f"request failed: {r.url}"))
        pg.on("response", lambda r: r.status >= 400 and pg.errors.append(f"HTTP {r.status}: {r.url}"))
        t0 = time.perf_counter()
        pg.goto(url)
        run = pg.locator(".run-button")
        run.wait_for(timeout=30_000)
        playwright_api.expect(run).to_be_enabled(timeout=30_000)
        TIMINGS["first_page_interactive_s"] = time.perf_counter() - t0
        yield pg
        browser.close()


def _no_errors(pg) -> None:
    errors = [e for e in pg.errors if not any(s in e for s in IGNORED_CONSOLE)]
    pg.errors.clear()
    assert errors == []
    assert pg.get_by_text("Traceback (most recent call last)").count() == 0, pg.inner_text("body")[:2000]


def _tab(pg, name: str) -> None:
    pg.get_by_role("tab", name=name, exact=False).click()
    pg.wait_for_timeout(300)


def _shot(pg, name: str) -> None:
    REVIEW.mkdir(parents=True, exist_ok=True)
    pg.wait_for_timeout(500)
    pg.screenshot(path=str(REVIEW / f"{name}.png"), full_page=True)


def _aria(pg, selector: str) -> list[str]:
    """ECharts' accessible descriptions (aria-label) of the charts under ``selector``."""
    pg.locator(f"{selector} [aria-label]").first.wait_for(state="attached", timeout=15_000)
    pg.wait_for_timeout(500)
    return pg.eval_on_selector_all(f"{selector} [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")


def _run(pg, name: str) -> float:
    pg.get_by_label("Name of this scenario").fill(name)
    pg.get_by_label("Name of this scenario").press("Enter")
    playwright_api.expect(pg.locator(".run-error")).to_have_count(0)
    t0 = time.perf_counter()
    pg.locator(".run-button").click()
    done = pg.locator(f".run-done:has-text('{name}:'), .run-error").first
    done.wait_for(timeout=120_000)
    took = time.perf_counter() - t0
    assert f"{name}: 3 replicate(s)" in done.inner_text(), done.inner_text()
    return took


def test_scenario_page_runs_and_rejects_bad_values(page):
    _no_errors(page)
    assert page.get_by_text("apply_rate [0, 1]").count() == 1
    assert page.get_by_text("yearly probability an eligible household applies").count() == 1
    TIMINGS["reduced_scale_run_s"] = _run(page, "base")
    box = page.get_by_label("apply_rate [0, 1]")
    box.fill("3")
    box.press("Enter")
    page.locator(".run-button").click()
    err = page.locator(".run-error")
    err.wait_for(timeout=10_000)
    assert err.inner_text().strip().endswith("error: --set: policy.hukou.apply_rate = 3.0: must be <= 1.0")
    _shot(page, "scenario")
    _no_errors(page)


def test_changing_a_lever_updates_the_comparison(page):
    before = _aria(page, ".compare-charts")
    assert before and all("base" in a for a in before)
    box = page.get_by_label("apply_rate [0, 1]")
    box.fill("0.05")
    box.press("Enter")
    page.wait_for_timeout(300)
    _run(page, "slow_hukou")
    page.wait_for_timeout(800)
    after = _aria(page, ".compare-charts")
    assert any("slow_hukou" in a for a in after) and after != before
    _tab(page, "compare")
    _shot(page, "compare")
    labels = _aria(page, ".compare-charts")
    assert any("difference vs base" in a and "slow_hukou" in a for a in labels), labels
    assert any("observed" in a for a in labels)
    _shot(page, "compare")
    with page.expect_download() as dl:
        page.get_by_text("Download key figures (CSV)").click()
    path = REVIEW / dl.value.suggested_filename
    dl.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("scenario,area,label,year")
    assert sum(ln.startswith("slow_hukou,") for ln in lines) == 5 and sum(ln.startswith("base,") for ln in lines) == 5
    _no_errors(page)


def test_map_renders_the_38_districts_and_a_trajectory(page):
    _tab(page, "map")
    (label,) = _aria(page, ".district-map")
    from migration_abm.app.data import labels_by_code

    names = labels_by_code().values()
    assert len(names) == 38 and sum(n in label for n in names) == 38
    box = page.locator(".district-map canvas").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    page.locator(".district-trajectory").wait_for(timeout=10_000)
    _shot(page, "map")
    _no_errors(page)


def test_siting_run_shows_its_sites_and_downloads(page, server):
    _tab(page, "siting")
    page.get_by_label("Demand points").fill("800")
    page.get_by_label("Demand points").press("Enter")
    page.get_by_label("New sites (budget)").fill("5")
    page.get_by_label("New sites (budget)").press("Enter")
    t0 = time.perf_counter()
    page.locator(".site-button").click()
    page.locator(".site-done").wait_for(timeout=240_000)
    TIMINGS["siting_run_s"] = time.perf_counter() - t0
    summary = page.locator(".plan-summary")
    summary.wait_for(timeout=20_000)
    m = re.search(r"(\d+) new site\(s\)", summary.inner_text())
    n_new = int(m.group(1))
    assert 1 <= n_new <= 5
    page.wait_for_timeout(800)
    (label,) = _aria(page, ".siting-map")
    assert "new sites" in label and "existing sites" in label
    _shot(page, "siting")
    for fname in ("sites.csv", "districts.csv", "sites.geojson"):
        with page.expect_download() as dl:
            page.get_by_text(f"Download {fname}").click()
        out = REVIEW / f"siting_{fname}"
        dl.value.save_as(out)
        text = out.read_text()
        if fname == "sites.geojson":
            feats = json.loads(text)["features"]
            sites = [f for f in feats if f["properties"]["layer"] == "site"]
            assert sum(f["properties"]["status"] == "new" for f in sites) == n_new
            assert any(f["properties"]["layer"] == "catchment" for f in feats)
        else:
            assert len(text.splitlines()) > 1
    _no_errors(page)


def test_runs_page_opens_a_cli_run_in_compare(page):
    _tab(page, "runs")
    page.get_by_text("cli_run.h5").first.wait_for(timeout=10_000)
    page.get_by_label("Pick entries").click(force=True)
    page.get_by_role("option", name="cli_run.h5").click()
    page.keyboard.press("Escape")
    page.locator(".open-each").click()
    page.get_by_text("opened 1 scenario(s) in Compare: cli_run").wait_for(timeout=10_000)
    _shot(page, "runs")
    _tab(page, "compare")
    # the CLI run ends in 2025, the others in 2035: shown apart, with a warning
    playwright_api.expect(page.get_by_text("Years differ from base; not shown: cli_run")).to_have_count(1)
    _no_errors(page)
