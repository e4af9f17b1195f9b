{#- Buffering and errors per value of qos_hourly dimensions (isp,
    device_type, country: one name or a list), over all hours. Ratios are
    recomputed from the summed seconds: hourly ratios do not average. -#}
{% macro quality_of_service_by(dimensions) -%}
{%- set dimensions = [dimensions] if dimensions is string else dimensions -%}
select
    {{ dimensions | join(', ') }},
    {{ int_sum('sessions') }} as sessions,
    {{ int_sum('buffering_events') }} as buffering_events,
    sum(buffering_seconds) / 3600 as buffering_hours,
    sum(watch_seconds) / 3600 as watch_hours,
    case when sum(buffering_seconds) + sum(watch_seconds) > 0
        then sum(buffering_seconds) / (sum(buffering_seconds) + sum(watch_seconds)) end as rebuffer_ratio,
    sum(buffering_events) / cast(sum(sessions) as double) as buffering_events_per_session,
    {{ int_sum('sessions_with_errors') }} as sessions_with_errors,
    sum(sessions_with_errors) / cast(sum(sessions) as double) as error_session_rate,
    sum(avg_bandwidth_mbps * sessions) / sum(case when avg_bandwidth_mbps is not null then sessions end) as avg_bandwidth_mbps
from {{ ref('stg_qos_hourly') }}
group by {{ dimensions | join(', ') }}
{%- endmacro %}
