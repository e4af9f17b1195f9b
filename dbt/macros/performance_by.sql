{#- Content performance per value of one title attribute (creator, genre),
    over every viewer-video row of gold's user_video_engagement. -#}
{% macro performance_by(dimension) -%}
with engagement as (
    select
        coalesce(titles.{{ dimension }}, 'unknown') as {{ dimension }},
        engagement.*
    from {{ ref('stg_user_video_engagement') }} as engagement
    left join {{ ref('dim_titles') }} as titles on titles.title_id = engagement.title_id
)

select
    {{ dimension }},
    count(distinct title_id) as titles,
    count(distinct customer_id) as viewers,
    count(*) as viewer_videos,
    {{ int_sum('session_count') }} as sessions,
    sum(total_watch_seconds) / 3600 as total_watch_hours,
    avg(watch_percentage) as avg_watch_percentage,
    avg(unique_watch_percentage) as avg_unique_watch_percentage,
    avg(engagement_score) as avg_engagement_score,
    avg(case when completion_count > 0 then 1.0 else 0.0 end) as viewer_completion_rate,
    avg(case when engagement_tier = 'High' then 1.0 else 0.0 end) as high_engagement_share,
    rank() over (order by avg(engagement_score) desc nulls last) as engagement_rank
from engagement
group by {{ dimension }}
{%- endmacro %}
