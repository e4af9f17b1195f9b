-- The retention curve per video and viewer country (the country of each
-- viewer's first session of the video), with gold's rules for video_retention:
-- a viewer retains a bucket when one watched interval covers all of it (to
-- 1e-9 s), and drops off in the bucket of their furthest position.
with intervals as (
    select * from {{ ref('int_viewer_watch_intervals') }}
),

buckets as (
    select bucket from {{ ref('int_percent_buckets') }}
),

viewers as (
    select distinct customer_id, title_id, country, duration_seconds, max_position_seconds
    from intervals
),

totals as (
    select title_id, country, count(*) as total_viewers
    from viewers
    group by title_id, country
),

retained as (
    select intervals.title_id, intervals.country, buckets.bucket, count(distinct intervals.customer_id) as retained_viewers
    from intervals
    inner join buckets
        on intervals.interval_start <= intervals.duration_seconds * buckets.bucket / 100 + 1e-9
        and intervals.duration_seconds * (buckets.bucket + 1) / 100 - 1e-9 <= intervals.interval_end
    group by intervals.title_id, intervals.country, buckets.bucket
),

dropped as (
    select
        title_id,
        country,
        least(greatest(cast(floor(100 * max_position_seconds / duration_seconds) as {{ dbt.type_int() }}), 0), 99) as bucket,
        count(*) as dropoff_viewers
    from viewers
    group by 1, 2, 3
),

curve as (
    select
        totals.title_id,
        totals.country,
        buckets.bucket,
        coalesce(retained.retained_viewers, 0) as retained_viewers,
        coalesce(dropped.dropoff_viewers, 0) as dropoff_viewers,
        totals.total_viewers
    from totals
    cross join buckets
    left join retained
        on retained.title_id = totals.title_id and retained.country = totals.country and retained.bucket = buckets.bucket
    left join dropped
        on dropped.title_id = totals.title_id and dropped.country = totals.country and dropped.bucket = buckets.bucket
)

select
    title_id,
    country,
    bucket,
    retained_viewers,
    retained_viewers / cast(nullif(max(case when bucket = 0 then retained_viewers end) over (partition by title_id, country), 0) as double) as retention_share,
    dropoff_viewers,
    total_viewers
from curve
