-- Which videos draw the most viewers, and how much of them they watch.
with engagement as (
    select * from {{ ref('stg_user_video_engagement') }}
),

per_title as (
    select
        title_id,
        count(*) as viewers,
        {{ int_sum('session_count') }} as sessions,
        sum(total_watch_seconds) / 3600 as total_watch_hours,
        sum(unique_watch_seconds) / 3600 as unique_watch_hours,
        avg(watch_percentage) as avg_watch_percentage,
        avg(unique_watch_percentage) as avg_unique_watch_percentage,
        avg(completion_percentage) as avg_completion_percentage,
        avg(case when completion_count > 0 then 1.0 else 0.0 end) as viewer_completion_rate,
        avg(engagement_score) as avg_engagement_score,
        {{ int_sum("case when engagement_tier = 'High' then 1 else 0 end") }} as high_engagement_viewers
    from engagement
    group by title_id
)

select
    per_title.title_id,
    titles.title,
    titles.genre,
    titles.creator,
    titles.duration_seconds,
    per_title.viewers,
    per_title.sessions,
    per_title.total_watch_hours,
    per_title.unique_watch_hours,
    per_title.avg_watch_percentage,
    per_title.avg_unique_watch_percentage,
    per_title.avg_completion_percentage,
    per_title.viewer_completion_rate,
    per_title.avg_engagement_score,
    per_title.high_engagement_viewers,
    rank() over (order by per_title.viewers desc) as viewers_rank,
    rank() over (order by per_title.avg_unique_watch_percentage desc nulls last) as watch_percentage_rank
from per_title
left join {{ ref('dim_titles') }} as titles on titles.title_id = per_title.title_id
