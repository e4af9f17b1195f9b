-- One row per 5-minute interval of every day with playback.
select
    interval_start,
    event_date,
    concurrent_sessions,
    daily_peak_sessions,
    is_daily_peak,
    _loaded_at as loaded_at
from {{ source('gold', 'concurrency_5min') }}
