-- One row per day of session start, video, country and device type.
select
    event_date,
    title_id,
    country,
    device_type,
    viewers,
    sessions,
    total_watch_hours,
    unique_watch_hours,
    avg_watch_percentage,
    avg_completion_percentage,
    completion_rate,
    avg_engagement_score,
    _loaded_at as loaded_at
from {{ source('gold', 'video_daily') }}
