-- The retention curve and where viewers stop, per video and 1 % bucket.
select
    retention.title_id,
    titles.title,
    retention.bucket,
    retention.bucket_start_seconds,
    retention.bucket_end_seconds,
    retention.viewers as retained_viewers,
    retention.retention_share,
    retention.dropoff_viewers,
    retention.dropoff_viewers / cast(nullif(retention.total_viewers, 0) as double) as dropoff_share,
    retention.total_viewers
from {{ ref('stg_video_retention') }} as retention
left join {{ ref('dim_titles') }} as titles on titles.title_id = retention.title_id
