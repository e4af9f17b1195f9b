-- Who the power users are: viewers with at least
-- var('power_user_min_high_titles') videos in the High engagement tier.
with per_viewer as (
    select
        customer_id,
        count(*) as titles_watched,
        {{ int_sum("case when engagement_tier = 'High' then 1 else 0 end") }} as high_engagement_titles,
        {{ int_sum('case when completion_count > 0 then 1 else 0 end') }} as completed_titles,
        {{ int_sum('session_count') }} as sessions,
        sum(total_watch_seconds) / 3600 as total_watch_hours,
        avg(unique_watch_percentage) as avg_unique_watch_percentage,
        avg(engagement_score) as avg_engagement_score,
        min(first_watched_at) as first_watched_at,
        max(last_watched_at) as last_watched_at
    from {{ ref('stg_user_video_engagement') }}
    group by customer_id
)

select
    *,
    rank() over (order by high_engagement_titles desc, total_watch_hours desc) as power_rank
from per_viewer
where high_engagement_titles >= {{ var('power_user_min_high_titles') }}
