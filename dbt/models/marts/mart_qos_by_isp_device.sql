-- Buffering and errors per ISP and device type: the quality-of-service
-- heatmap of the report.
{{ quality_of_service_by(['isp', 'device_type']) }}
