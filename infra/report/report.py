"""Writes StreamReel's self-contained HTML report from the reporting marts of
one DuckDB file (the one `dbt build` wrote):

    python report.py DUCKDB_FILE OUT.html

Every chart's rows come from one query of one mart, embedded in the page as
JSON beside the chart (`<script type="application/json" id="data-CHART">`)
and drawn by Plotly's JavaScript bundle, inlined: the page loads nothing
from the network.
"""

from __future__ import annotations

import datetime
import decimal
import html
import json
import sys
from pathlib import Path

import duckdb
import plotly
from plotly.offline import get_plotlyjs

TOP_TITLES = 5

# (chart id, section, title, what it shows, mart, query). The queries select
# mart rows as they are; the drawing code only picks columns.
CHARTS = [
    ("kpi-viewers", "Daily KPIs", "Viewers and sessions per day", "Distinct viewers and sessions, by day of session start (UTC).",
     "mart_daily_kpis", "select event_date, viewers, sessions from marts.mart_daily_kpis order by event_date"),
    ("kpi-watch-hours", "Daily KPIs", "Watch hours per day", "Hours of content watched, by day of session start.",
     "mart_daily_kpis", "select event_date, watch_hours from marts.mart_daily_kpis order by event_date"),
    ("kpi-rates", "Daily KPIs", "Completion rate and rebuffer ratio", "Share of sessions completed; buffering / (buffering + watching) time.",
     "mart_daily_kpis", "select event_date, completion_rate, rebuffer_ratio from marts.mart_daily_kpis order by event_date"),
    ("kpi-concurrency", "Daily KPIs", "Peak concurrency", "Most sessions playing at once in any 5-minute interval of the day.",
     "mart_daily_kpis", "select event_date, peak_concurrent_sessions from marts.mart_daily_kpis order by event_date"),
    ("top-titles", "Top titles, creators and genres", "Top 10 titles by viewers", "Viewers per title, and their average unique watch %.",
     "mart_top_titles",
     "select title_id, coalesce(title, title_id) as title, viewers, avg_unique_watch_percentage from marts.mart_top_titles "
     "order by viewers_rank, title_id limit 10"),
    ("creators", "Top titles, creators and genres", "Creators by watch hours", "Hours watched of each creator's titles (top 10).",
     "mart_creator_performance",
     "select creator, total_watch_hours, avg_engagement_score from marts.mart_creator_performance order by total_watch_hours desc, creator limit 10"),
    ("genres", "Top titles, creators and genres", "Genres by watch hours", "Hours watched per genre, and the average engagement score.",
     "mart_genre_performance", "select genre, total_watch_hours, avg_engagement_score from marts.mart_genre_performance order by total_watch_hours desc, genre"),
    ("retention", "Retention and drop-off", f"Retention curves of the top {TOP_TITLES} titles",
     "Share of a title's viewers who watched each 1 % of it; the marker is where most viewers stopped.",
     "mart_retention_by_title",
     "select r.title_id, coalesce(r.title, r.title_id) as title, r.bucket, r.retention_share from marts.mart_retention_by_title r "
     f"join (select title_id from marts.mart_top_titles order by viewers_rank, title_id limit {TOP_TITLES}) t using (title_id) "
     "order by r.title_id, r.bucket"),
    ("dropoff", "Retention and drop-off", "Where viewers drop off", "For each top title: the 1 % bucket where most viewers stopped (before the end).",
     "mart_dropoff_points",
     "select d.title_id, coalesce(d.title, d.title_id) as title, d.steepest_dropoff_bucket, d.steepest_dropoff_viewers, d.total_viewers "
     f"from marts.mart_dropoff_points d join (select title_id from marts.mart_top_titles order by viewers_rank, title_id limit {TOP_TITLES}) t "
     "using (title_id) order by d.title_id"),
    ("dropoff-timeline", "Retention and drop-off", "Drop-off timeline of the top title", "Viewers whose watching ended in each 1 % bucket (the last one: those who reached the end).",
     "mart_retention_by_title",
     "select bucket, dropoff_viewers from marts.mart_retention_by_title "
     "where title_id = (select title_id from marts.mart_top_titles order by viewers_rank, title_id limit 1) order by bucket"),
    ("region", "Retention by region", "Retention of the top title by country", "Share of each country's viewers who watched each 1 % of the top title.",
     "mart_retention_by_region",
     "select country, bucket, retention_share from marts.mart_retention_by_region "
     "where title_id = (select title_id from marts.mart_top_titles order by viewers_rank, title_id limit 1) order by country, bucket"),
    ("qos-heatmap", "Quality of service", "Rebuffer ratio by ISP and device", "buffering / (buffering + watching) time; darker is worse.",
     "mart_qos_by_isp_device", "select isp, device_type, rebuffer_ratio, sessions from marts.mart_qos_by_isp_device order by isp, device_type"),
    ("errors", "Quality of service", "Sessions with errors by ISP", "Share of sessions with at least one playback error.",
     "mart_qos_by_isp", "select isp, error_session_rate, sessions_with_errors from marts.mart_qos_by_isp order by isp"),
    ("hours", "Viewing over the day", "Viewing and concurrency by hour of day (UTC)",
     "Sessions started in each hour of the day, and the average and peak sessions playing at once.",
     "mart_peak_viewing_hours",
     "select hour_of_day, sessions_started, avg_concurrent_sessions, peak_concurrent_sessions from marts.mart_peak_viewing_hours order by hour_of_day"),
]

# How each chart draws its rows (Plotly traces built in the page).
DRAW = r"""
const rows = id => JSON.parse(document.getElementById('data-' + id).textContent);
const col = (rs, c) => rs.map(r => r[c]);
const byKey = (rs, key) => rs.reduce((m, r) => ((m[r[key]] = m[r[key]] || []).push(r), m), {});
const layout = (extra) => Object.assign({margin: {t: 10, r: 20, b: 50, l: 60}, height: 320,
  legend: {orientation: 'h', y: -0.25}, font: {family: 'system-ui, sans-serif', size: 12}}, extra);
const line = (rs, x, y, name) => ({type: 'scatter', mode: 'lines+markers', x: col(rs, x), y: col(rs, y), name});
const days = {type: 'date', tickformat: '%b %d', dtick: 86400000};
const charts = {
  'kpi-viewers': rs => [[line(rs, 'event_date', 'viewers', 'viewers'), line(rs, 'event_date', 'sessions', 'sessions')], layout({xaxis: days})],
  'kpi-watch-hours': rs => [[line(rs, 'event_date', 'watch_hours', 'watch hours')], layout({xaxis: days})],
  'kpi-rates': rs => [[line(rs, 'event_date', 'completion_rate', 'completion rate'),
    Object.assign(line(rs, 'event_date', 'rebuffer_ratio', 'rebuffer ratio (right)'), {yaxis: 'y2'})],
    layout({xaxis: days, yaxis: {tickformat: '.0%', rangemode: 'tozero'}, yaxis2: {tickformat: '.2%', overlaying: 'y', side: 'right', rangemode: 'tozero'}})],
  'kpi-concurrency': rs => [[line(rs, 'event_date', 'peak_concurrent_sessions', 'peak concurrent sessions')], layout({xaxis: days})],
  'top-titles': rs => [[{type: 'bar', orientation: 'h', y: col(rs, 'title'), x: col(rs, 'viewers'), name: 'viewers',
    customdata: col(rs, 'avg_unique_watch_percentage'), hovertemplate: '%{y}: %{x} viewers, %{customdata:.1f}% watched<extra></extra>'}],
    layout({yaxis: {autorange: 'reversed'}, margin: {t: 10, r: 20, b: 40, l: 220}})],
  'creators': rs => [[{type: 'bar', orientation: 'h', y: col(rs, 'creator'), x: col(rs, 'total_watch_hours'), name: 'watch hours'}],
    layout({yaxis: {autorange: 'reversed'}, margin: {t: 10, r: 20, b: 40, l: 160}})],
  'genres': rs => [[{type: 'bar', x: col(rs, 'genre'), y: col(rs, 'total_watch_hours'), name: 'watch hours'},
    {type: 'scatter', mode: 'markers', x: col(rs, 'genre'), y: col(rs, 'avg_engagement_score'), name: 'avg engagement score', yaxis: 'y2'}],
    layout({yaxis2: {overlaying: 'y', side: 'right', rangemode: 'tozero'}})],
  'retention': rs => {
    const drops = Object.fromEntries(rows('dropoff').map(d => [d.title_id, d.steepest_dropoff_bucket]));
    const traces = [];
    for (const [title, curve] of Object.entries(byKey(rs, 'title_id'))) {
      traces.push(line(curve, 'bucket', 'retention_share', curve[0].title));
      const drop = curve.find(r => r.bucket === drops[title]);
      if (drop) traces.push({type: 'scatter', mode: 'markers', x: [drop.bucket], y: [drop.retention_share], showlegend: false,
        marker: {size: 11, symbol: 'x', color: 'black'}, name: 'drop-off: ' + curve[0].title});
    }
    return [traces, layout({height: 380, xaxis: {title: {text: '% of the title'}}, yaxis: {tickformat: '.0%', title: {text: 'viewers still watching'}}})];
  },
  'dropoff': rs => [[{type: 'bar', orientation: 'h', y: col(rs, 'title'), x: col(rs, 'steepest_dropoff_bucket'), name: 'bucket',
    customdata: col(rs, 'steepest_dropoff_viewers'), hovertemplate: '%{y}: most stop at %{x}% (%{customdata} viewers)<extra></extra>'}],
    layout({xaxis: {range: [0, 100], title: {text: '% of the title'}}, margin: {t: 10, r: 20, b: 50, l: 220}})],
  'dropoff-timeline': rs => [[{type: 'bar', x: col(rs, 'bucket'), y: col(rs, 'dropoff_viewers'), name: 'viewers who stopped'}],
    layout({xaxis: {title: {text: '% of the title'}}})],
  'region': rs => {
    const countries = Object.keys(byKey(rs, 'country')).sort();
    const buckets = [...new Set(col(rs, 'bucket'))].sort((a, b) => a - b);
    const at = Object.fromEntries(rs.map(r => [r.country + '|' + r.bucket, r.retention_share]));
    return [[{type: 'heatmap', x: buckets, y: countries, z: countries.map(c => buckets.map(b => at[c + '|' + b] ?? null)), colorscale: 'Viridis',
      colorbar: {tickformat: '.0%'}}], layout({height: Math.max(320, 24 * countries.length + 80), xaxis: {title: {text: '% of the title'}},
      margin: {t: 10, r: 20, b: 50, l: 130}})];
  },
  'qos-heatmap': rs => {
    const isps = Object.keys(byKey(rs, 'isp')).sort();
    const devices = Object.keys(byKey(rs, 'device_type')).sort();
    const at = Object.fromEntries(rs.map(r => [r.isp + '|' + r.device_type, r.rebuffer_ratio]));
    return [[{type: 'heatmap', x: devices, y: isps, z: isps.map(i => devices.map(d => at[i + '|' + d] ?? null)), colorscale: 'Reds',
      colorbar: {tickformat: '.1%'}}], layout({height: Math.max(320, 30 * isps.length + 80), margin: {t: 10, r: 20, b: 50, l: 140}})];
  },
  'errors': rs => [[{type: 'bar', x: col(rs, 'isp'), y: col(rs, 'error_session_rate'), name: 'error session rate',
    customdata: col(rs, 'sessions_with_errors'), hovertemplate: '%{x}: %{y:.2%} (%{customdata} sessions)<extra></extra>'}],
    layout({yaxis: {tickformat: '.1%'}})],
  'hours': rs => [[{type: 'bar', x: col(rs, 'hour_of_day'), y: col(rs, 'sessions_started'), name: 'sessions started'},
    {type: 'scatter', mode: 'lines+markers', x: col(rs, 'hour_of_day'), y: col(rs, 'avg_concurrent_sessions'), name: 'avg concurrent', yaxis: 'y2'},
    {type: 'scatter', mode: 'lines+markers', x: col(rs, 'hour_of_day'), y: col(rs, 'peak_concurrent_sessions'), name: 'peak concurrent', yaxis: 'y2'}],
    layout({xaxis: {dtick: 1, title: {text: 'hour of day (UTC)'}}, yaxis2: {overlaying: 'y', side: 'right', rangemode: 'tozero'}})],
};
window.streamreelRendered = Promise.all(Object.entries(charts).map(([id, draw]) => {
  const [traces, chartLayout] = draw(rows(id));
  return Plotly.newPlot(id, traces, chartLayout, {displayModeBar: false, responsive: true});
}));
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1d2330; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #b9c0cf; font-size: 13px; }
main { padding: 8px 32px 32px; }
h2 { margin: 28px 0 10px; font-size: 18px; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; }
.tile { background: white; border-radius: 8px; padding: 12px 16px; min-width: 150px; box-shadow: 0 1px 2px #0002; }
.tile b { display: block; font-size: 22px; } .tile span { color: #5b6475; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
figure { background: white; border-radius: 8px; margin: 0; padding: 12px; box-shadow: 0 1px 2px #0002; }
figcaption b { display: block; font-size: 14px; } figcaption span { color: #5b6475; font-size: 12px; }
footer { color: #5b6475; font-size: 12px; padding: 0 32px 24px; }
"""


def plain(value):
    """JSON for what DuckDB returns (dates, decimals)."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def query(connection, sql: str) -> list[dict]:
    cursor = connection.execute(sql)
    names = [d[0] for d in cursor.description]
    return [{name: plain(value) for name, value in zip(names, row)} for row in cursor.fetchall()]


def tiles(connection) -> str:
    (days, first, last, viewers_max, hours, sessions, completed, peak) = connection.execute(
        "select count(*), min(event_date), max(event_date), max(viewers), sum(watch_hours), sum(sessions), sum(completed_sessions), "
        "max(peak_concurrent_sessions) from marts.mart_daily_kpis").fetchone()
    titles = connection.execute("select count(*) from marts.mart_top_titles").fetchone()[0]
    rebuffer = connection.execute("select sum(buffering_hours) / nullif(sum(buffering_hours) + sum(watch_hours), 0) "
                                  "from marts.mart_qos_by_isp").fetchone()[0]
    items = [
        (f"{days}", f"days, {first} to {last}" if days else "days"),
        (f"{viewers_max or 0:,}", "viewers on the busiest day"),
        (f"{hours or 0:,.0f}", "watch hours"),
        (f"{sessions or 0:,}", "sessions"),
        (f"{(completed or 0) / sessions:.1%}" if sessions else "n/a", "sessions completed"),
        (f"{rebuffer:.2%}" if rebuffer is not None else "n/a", "rebuffer ratio"),
        (f"{peak or 0:,}", "peak concurrent sessions"),
        (f"{titles:,}", "titles watched"),
    ]
    return "".join(f'<div class="tile"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for v, k in items)


def render(database: Path) -> str:
    connection = duckdb.connect(str(database), read_only=True)
    sections: dict[str, list[str]] = {}
    for chart_id, section, title, caption, mart, sql in CHARTS:
        rows = query(connection, sql)
        data = json.dumps(rows, separators=(",", ":")).replace("</", "<\\/")
        sections.setdefault(section, []).append(
            f'<figure data-mart="{mart}"><figcaption><b>{html.escape(title)}</b><span>{html.escape(caption)} '
            f'(<code>{mart}</code>)</span></figcaption><div id="{chart_id}" class="chart"></div>'
            f'<script type="application/json" id="data-{chart_id}">{data}</script></figure>')
    body = f'<div class="tiles">{tiles(connection)}</div>' + "".join(
        f'<h2>{html.escape(name)}</h2><div class="grid">{"".join(figures)}</div>' for name, figures in sections.items())
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>StreamReel engagement report</title>"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<header><h1>StreamReel engagement report</h1><p>From the reporting marts of {html.escape(database.name)}, "
        f"generated {generated}</p></header><main>{body}</main>"
        f"<footer>Charts: the Plotly.js bundle of the plotly {plotly.__version__} Python package, inline. "
        "What every number means: docs/metrics.md of the StreamReel repository.</footer>"
        f"<script>{DRAW}</script></body></html>"
    )


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: report DUCKDB_FILE OUT.html")
    database, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not database.is_file():
        sys.exit(f"report: {database} is not a DuckDB file (run dbt build first: infra/bin/dbt-build)")
    page = render(database)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"report: wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) from {database}")


if __name__ == "__main__":
    main()
