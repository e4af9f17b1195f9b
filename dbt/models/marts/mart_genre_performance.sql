-- Which genres engage viewers most.
{{ performance_by('genre') }}
