-- Buffering and errors per country: where streaming quality hurts.
{{ quality_of_service_by('country') }}
