-- Buffering and errors per isp: where streaming quality hurts.
{{ quality_of_service_by('isp') }}
