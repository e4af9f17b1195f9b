-- One row per day of session start and viewer.
select
    event_date,
    customer_id,
    sessions,
    titles_watched,
    watch_seconds,
    completed_sessions,
    _loaded_at as loaded_at
from {{ source('gold', 'viewer_daily') }}
