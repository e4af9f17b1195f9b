-- One row per video and 1 % bucket of its duration.
select
    title_id,
    bucket,
    bucket_start_seconds,
    bucket_end_seconds,
    viewers,
    retention_share,
    dropoff_viewers,
    total_viewers,
    _loaded_at as loaded_at
from {{ source('gold', 'video_retention') }}
