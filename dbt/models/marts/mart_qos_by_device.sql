-- Buffering and errors per device type: where streaming quality hurts.
{{ quality_of_service_by('device_type') }}
