-- The executive daily KPIs (by day of session start, UTC): viewers, watch
-- hours, completion rate, rebuffer ratio, errors and peak concurrency.
with viewers as (
    select
        event_date,
        count(*) as viewers,
        {{ int_sum('sessions') }} as sessions,
        sum(watch_seconds) / 3600 as watch_hours,
        {{ int_sum('completed_sessions') }} as completed_sessions
    from {{ ref('stg_viewer_daily') }}
    group by event_date
),

quality as (
    select
        event_date,
        sum(buffering_seconds) as buffering_seconds,
        sum(watch_seconds) as watch_seconds,
        {{ int_sum('sessions_with_errors') }} as sessions_with_errors
    from {{ ref('stg_qos_hourly') }}
    group by event_date
),

concurrency as (
    select
        event_date,
        max(concurrent_sessions) as peak_concurrent_sessions,
        min(case when is_daily_peak then interval_start end) as peak_interval_start
    from {{ ref('stg_concurrency_5min') }}
    group by event_date
)

select
    viewers.event_date,
    viewers.viewers,
    viewers.sessions,
    viewers.watch_hours,
    viewers.completed_sessions,
    viewers.completed_sessions / cast(viewers.sessions as double) as completion_rate,
    case when quality.buffering_seconds + quality.watch_seconds > 0
        then quality.buffering_seconds / (quality.buffering_seconds + quality.watch_seconds) end as rebuffer_ratio,
    coalesce(quality.sessions_with_errors, 0) as sessions_with_errors,
    coalesce(concurrency.peak_concurrent_sessions, 0) as peak_concurrent_sessions,
    concurrency.peak_interval_start
from viewers
left join quality on quality.event_date = viewers.event_date
left join concurrency on concurrency.event_date = viewers.event_date
