-- Where each video loses its viewers: the bucket where most of them stop
-- (short of the end), how many leave early, and how many reach the end.
with retention as (
    select * from {{ ref('mart_retention_by_title') }}
),

steepest as (
    select
        title_id,
        bucket,
        bucket_start_seconds,
        dropoff_viewers,
        row_number() over (partition by title_id order by dropoff_viewers desc, bucket) as steepness_rank
    from retention
    where bucket < 99
),

per_title as (
    select
        title_id,
        max(title) as title,
        max(total_viewers) as total_viewers,
        {{ int_sum('dropoff_viewers') }} as dropoff_viewers,
        {{ int_sum('case when bucket < 10 then dropoff_viewers else 0 end') }} as early_dropoff_viewers,
        {{ int_sum('case when bucket >= 95 then dropoff_viewers else 0 end') }} as reached_end_viewers,
        max(case when bucket = 50 then retention_share end) as halfway_retention_share
    from retention
    group by title_id
)

select
    per_title.title_id,
    per_title.title,
    per_title.total_viewers,
    steepest.bucket as steepest_dropoff_bucket,
    steepest.bucket_start_seconds as steepest_dropoff_start_seconds,
    steepest.dropoff_viewers as steepest_dropoff_viewers,
    per_title.early_dropoff_viewers / cast(nullif(per_title.total_viewers, 0) as double) as early_dropoff_share,
    per_title.reached_end_viewers / cast(nullif(per_title.total_viewers, 0) as double) as reached_end_share,
    per_title.halfway_retention_share,
    per_title.dropoff_viewers
from per_title
left join steepest on steepest.title_id = per_title.title_id and steepest.steepness_rank = 1
