"""Benchmark the planners' page in headless Chromium: time to the first interactive page, and a
reduced-scale scenario run completed in the page.

Baselines measured in the same run: a one-button Solara page served the same way (what the framework
itself costs before our page renders anything), and the same simulations called directly from Python
(what the model itself costs, without the page). Medians of ``--repeats`` fresh browser sessions::

    .venv/bin/python benchmarks/bench_app.py                 # 5 repeats
    .venv/bin/python benchmarks/bench_app.py --repeats 3 --json results/app_review/bench_app.json

"Interactive" = the Run button is visible and enabled; the clock starts when the server answers HTTP
(app start excluded, as the goal states). A run's clock stops when its success message appears. Each
repeat changes a lever slightly so no run reuses an earlier identical run file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELLO = '''import solara


@solara.component
def Page():
    solara.Button("Run", classes=["run-button"])
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str]:
    port = _port()
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(1200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit(f"server {cmd} did not answer")


def _interactive(browser: object, url: str) -> float:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    expect(page.locator(".run-button")).to_be_enabled(timeout=60_000)
    took = time.perf_counter() - t0
    page.close()
    return took


def _page_run(browser: object, url: str, i: int) -> float:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(url)
    expect(page.locator(".run-button")).to_be_enabled(timeout=60_000)
    box = page.get_by_label("apply_rate [0, 1]")
    box.fill(f"{0.30 + 0.01 * i:.2f}")
    box.press("Enter")
    name = page.get_by_label("Name of this scenario")
    name.fill(f"bench{i}")
    name.press("Enter")
    page.wait_for_timeout(300)
    t0 = time.perf_counter()
    page.locator(".run-button").click()
    page.locator(f".run-done:has-text('bench{i}:')").wait_for(timeout=300_000)
    took = time.perf_counter() - t0
    page.close()
    return took


def _direct_runs(i: int, replicates: int, hpa: float) -> float:
    """The same replicate runs called from Python (the model's own cost)."""
    code = ("import time, migration_abm as m; cfg = m.load_config('configs/baseline.toml', "
            f"['policy.hukou.apply_rate={0.30 + 0.01 * i:.2f}', 'run.households_per_agent={hpa}']); "
            f"t = time.perf_counter(); [m.simulate(cfg, s) for s in range(1, {replicates + 1})]; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from migration_abm.app.scenario import SCALES, replicates

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install -y chromium)")
    hpa = next(iter(SCALES.values()))
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    (tmp / "hello.py").write_text(HELLO)
    env = {**os.environ, "MIGRATION_ABM_RESULTS": str(tmp / "results")}
    solara_cmd = [sys.executable, "-m", "solara", "run", "--host", "127.0.0.1", "--production", "--no-open",
                  "--no-check-version"]
    figures: dict[str, list[float]] = {"hello_interactive_s": [], "app_interactive_s": [], "page_run_s": [],
                                       "direct_run_s": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for i in range(args.repeats):
            for key, cmd, cwd in (("hello_interactive_s", [*solara_cmd[:4], "hello.py", *solara_cmd[4:]], tmp),
                                  ("app_interactive_s", [*solara_cmd[:4], "migration_abm.app.main", *solara_cmd[4:]],
                                   REPO)):
                proc, url = _serve(cmd, env, cwd)
                try:
                    figures[key].append(_interactive(browser, url))
                    if key == "app_interactive_s":
                        figures["page_run_s"].append(_page_run(browser, url, i))
                finally:
                    proc.terminate()
                    proc.wait()
            figures["direct_run_s"].append(_direct_runs(i, replicates.value, hpa))
        browser.close()
    shutil.rmtree(tmp, ignore_errors=True)
    med = {k: round(statistics.median(v), 2) for k, v in figures.items()}
    report = {"load_avg_1_5_15_start": load_start, "load_avg_1_5_15_end": os.getloadavg(), "repeats": args.repeats, "scale_households_per_agent": hpa,
              "replicates": replicates.value, "median": med, "all": {k: [round(x, 2) for x in v] for k, v in figures.items()},
              "page_overhead_interactive_s": round(med["app_interactive_s"] - med["hello_interactive_s"], 2),
              "page_run_over_direct": round(med["page_run_s"] / med["direct_run_s"], 2)}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
