-- Which creators' videos engage viewers most.
{{ performance_by('creator') }}
