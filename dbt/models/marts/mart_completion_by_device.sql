-- How often sessions finish their video, per device type.
with daily as (
    select * from {{ ref('stg_video_daily') }}
)

select
    device_type,
    {{ int_sum('sessions') }} as sessions,
    {{ int_sum('round(completion_rate * sessions)') }} as completed_sessions,
    sum(completion_rate * sessions) / sum(sessions) as session_completion_rate,
    sum(total_watch_hours) as total_watch_hours,
    sum(total_watch_hours) / sum(sessions) as watch_hours_per_session,
    sum(avg_completion_percentage * viewers) / sum(case when avg_completion_percentage is not null then viewers end) as avg_completion_percentage
from daily
group by device_type
