"""The HTML report as a person sees it: headless Chromium (Debian's, driven by
its chromedriver) opens the file with the network closed, every chart
renders (drawn marks, not blank pixels), the console holds no error, and the
values Plotly drew equal the rows of each chart's mart, queried here on
their own. A full-page screenshot is saved.

Run by infra/bin/test-reporting on the DuckDB file dbt built:
STREAMREEL_REPORT_DUCKDB (the marts), STREAMREEL_REPORT_HTML (the report)
and STREAMREEL_REPORT_SCREENSHOT (where the PNG goes).
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import duckdb
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHARTS = ["kpi-viewers", "kpi-watch-hours", "kpi-rates", "kpi-concurrency", "top-titles", "creators", "genres", "retention", "dropoff",
          "dropoff-timeline", "region", "qos-heatmap", "errors", "hours"]


def setting(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this test through infra/bin/test-reporting")
    return Path(value)


@pytest.fixture(scope="module")
def marts():
    connection = duckdb.connect(str(setting("STREAMREEL_REPORT_DUCKDB")), read_only=True)
    yield lambda sql: connection.execute(sql).fetchall()
    connection.close()


@pytest.fixture(scope="module")
def page():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    # The page must not need the network: every request but file:// fails.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    driver.get(setting("STREAMREEL_REPORT_HTML").resolve().as_uri())
    driver.set_script_timeout(60)
    driver.execute_async_script("const done = arguments[0]; window.streamreelRendered.then(() => done(true), e => done(String(e)));")
    yield driver
    driver.quit()


def drawn(page, chart: str) -> list[dict]:
    """The traces Plotly drew in the chart (its `data`, as JSON)."""
    return json.loads(page.execute_script(f"return JSON.stringify(document.getElementById('{chart}').data);"))


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def same(got: list, expected: list, what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} values drawn, {len(expected)} in the mart"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert close(g, e), f"{what}[{i}]: drawn {g!r}, mart {e!r}"


def column(rows, i):
    return [r[i] for r in rows]


def test_every_chart_renders_without_console_errors_and_is_not_blank(page):
    errors = [e for e in page.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], f"console errors: {errors}"
    for chart in CHARTS:
        element = page.find_element(By.ID, chart)
        marks = page.execute_script(
            "const g = document.getElementById(arguments[0]);"
            "return g.querySelectorAll('.point, .bars path, .heatmaplayer image, .scatterlayer .js-line').length;", chart)
        assert marks > 0, f"{chart}: nothing drawn"
        assert sum(len(t.get("x") or t.get("z") or []) for t in drawn(page, chart)) > 0, f"{chart}: no data"
        page.execute_script("arguments[0].scrollIntoView()", element)
        image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")
        colours = len(set(image.getdata()))
        assert colours > 20, f"{chart}: the picture is blank ({colours} colours)"


def test_the_kpi_charts_draw_the_daily_kpis(page, marts):
    rows = marts("select cast(event_date as varchar), viewers, sessions, watch_hours, completion_rate, rebuffer_ratio, peak_concurrent_sessions "
                 "from marts.mart_daily_kpis order by event_date")
    assert rows, "mart_daily_kpis is empty"
    viewers, sessions = drawn(page, "kpi-viewers")
    same(viewers["x"], column(rows, 0), "days")
    same(viewers["y"], column(rows, 1), "viewers")
    same(sessions["y"], column(rows, 2), "sessions")
    same(drawn(page, "kpi-watch-hours")[0]["y"], column(rows, 3), "watch hours")
    completion, rebuffer = drawn(page, "kpi-rates")
    same(completion["y"], column(rows, 4), "completion rate")
    same(rebuffer["y"], column(rows, 5), "rebuffer ratio")
    same(drawn(page, "kpi-concurrency")[0]["y"], column(rows, 6), "peak concurrency")


def test_top_titles_creators_and_genres_draw_their_marts(page, marts):
    titles = marts("select coalesce(title, title_id), viewers from marts.mart_top_titles order by viewers_rank, title_id limit 10")
    (bars,) = drawn(page, "top-titles")
    same(bars["y"], column(titles, 0), "titles")
    same(bars["x"], column(titles, 1), "viewers")
    assert bars["x"] == sorted(bars["x"], reverse=True), "the most viewed title comes first"
    creators = marts("select creator, total_watch_hours from marts.mart_creator_performance order by total_watch_hours desc, creator limit 10")
    (bars,) = drawn(page, "creators")
    same(bars["y"], column(creators, 0), "creators")
    same(bars["x"], column(creators, 1), "creator watch hours")
    genres = marts("select genre, total_watch_hours, avg_engagement_score from marts.mart_genre_performance order by total_watch_hours desc, genre")
    hours, score = drawn(page, "genres")
    same(hours["x"], column(genres, 0), "genres")
    same(hours["y"], column(genres, 1), "genre watch hours")
    same(score["y"], column(genres, 2), "genre engagement")


def test_retention_curves_and_dropoff_draw_the_top_titles(page, marts):
    top = column(marts("select title_id from marts.mart_top_titles order by viewers_rank, title_id limit 5"), 0)
    curves = [t for t in drawn(page, "retention") if t.get("mode") == "lines+markers"]
    markers = [t for t in drawn(page, "retention") if t.get("mode") == "markers"]
    assert len(curves) == len(top)
    for title_id, curve in zip(sorted(top), curves):
        rows = marts(f"select bucket, retention_share from marts.mart_retention_by_title where title_id = '{title_id}' order by bucket")
        same(curve["x"], column(rows, 0), f"{title_id} buckets")
        same(curve["y"], column(rows, 1), f"{title_id} retention")
    steepest = marts("select title_id, steepest_dropoff_bucket from marts.mart_dropoff_points "
                     f"where title_id in ({', '.join(repr(t) for t in top)}) order by title_id")
    same(drawn(page, "dropoff")[0]["x"], column(steepest, 1), "steepest drop-off buckets")
    assert sorted(m["x"][0] for m in markers) == sorted(b for _, b in steepest if b is not None), "a marker at each steepest drop-off"
    timeline = marts(f"select bucket, dropoff_viewers from marts.mart_retention_by_title where title_id = '{top[0]}' order by bucket")
    (bars,) = drawn(page, "dropoff-timeline")
    same(bars["y"], column(timeline, 1), "drop-off timeline")


def test_the_heatmaps_draw_retention_by_region_and_rebuffering_by_isp_and_device(page, marts):
    top = marts("select title_id from marts.mart_top_titles order by viewers_rank, title_id limit 1")[0][0]
    (heat,) = drawn(page, "region")
    for country, bucket, share in marts(f"select country, bucket, retention_share from marts.mart_retention_by_region where title_id = '{top}'"):
        assert close(heat["z"][heat["y"].index(country)][heat["x"].index(bucket)], share), (country, bucket)
    (heat,) = drawn(page, "qos-heatmap")
    cells = marts("select isp, device_type, rebuffer_ratio from marts.mart_qos_by_isp_device")
    assert len(cells) > 1
    for isp, device, ratio in cells:
        assert close(heat["z"][heat["y"].index(isp)][heat["x"].index(device)], ratio), (isp, device)
    errors = marts("select isp, error_session_rate from marts.mart_qos_by_isp order by isp")
    (bars,) = drawn(page, "errors")
    same(bars["x"], column(errors, 0), "ISPs")
    same(bars["y"], column(errors, 1), "error session rate")


def test_viewing_by_hour_of_day_draws_its_mart_and_the_screenshot_is_saved(page, marts):
    rows = marts("select hour_of_day, sessions_started, avg_concurrent_sessions, peak_concurrent_sessions from marts.mart_peak_viewing_hours "
                 "order by hour_of_day")
    started, average, peak = drawn(page, "hours")
    same(started["x"], column(rows, 0), "hours of day")
    same(started["y"], column(rows, 1), "sessions started")
    same(average["y"], column(rows, 2), "average concurrency")
    same(peak["y"], column(rows, 3), "peak concurrency")
    height = page.execute_script("window.scrollTo(0, 0); return document.documentElement.scrollHeight;")
    page.set_window_size(1400, height)
    screenshot = setting("STREAMREEL_REPORT_SCREENSHOT")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.save_screenshot(str(screenshot))
    assert Image.open(screenshot).size[1] >= height * 0.9, "the screenshot holds the whole page"
