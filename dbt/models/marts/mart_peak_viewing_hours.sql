-- When people watch: concurrency and session starts per hour of the day (UTC).
with concurrency as (
    select
        extract(hour from interval_start) as hour_of_day,
        event_date,
        concurrent_sessions
    from {{ ref('stg_concurrency_5min') }}
),

per_hour as (
    select
        hour_of_day,
        count(distinct event_date) as days_observed,
        avg(concurrent_sessions) as avg_concurrent_sessions,
        max(concurrent_sessions) as peak_concurrent_sessions
    from concurrency
    group by hour_of_day
),

starts as (
    select extract(hour from event_hour) as hour_of_day, {{ int_sum('sessions') }} as sessions_started
    from {{ ref('stg_qos_hourly') }}
    group by 1
)

select
    cast(per_hour.hour_of_day as {{ dbt.type_int() }}) as hour_of_day,
    per_hour.days_observed,
    per_hour.avg_concurrent_sessions,
    per_hour.peak_concurrent_sessions,
    coalesce(starts.sessions_started, 0) as sessions_started,
    rank() over (order by per_hour.avg_concurrent_sessions desc) as busiest_rank
from per_hour
left join starts on starts.hour_of_day = per_hour.hour_of_day
