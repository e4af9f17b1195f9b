-- One row per hour of session start, ISP, device type, country and quality.
select
    event_hour,
    event_date,
    isp,
    device_type,
    country,
    quality,
    sessions,
    buffering_events,
    buffering_seconds,
    watch_seconds,
    rebuffer_ratio,
    sessions_with_errors,
    avg_bandwidth_mbps,
    _loaded_at as loaded_at
from {{ source('gold', 'qos_hourly') }}
