-- One row per interval of each viewer's watched union, for videos of known
-- duration: what retention by region is computed from, as gold computes
-- retention by title.
with engagement as (
    select * from {{ ref('stg_user_video_engagement') }}
    where duration_seconds > 0
)

select
    customer_id,
    title_id,
    country,
    device_type,
    duration_seconds,
    max_position_seconds,
    interval_start,
    interval_end
from ({{ interval_pairs('engagement', 'unique_watch_intervals') }}) as pairs
