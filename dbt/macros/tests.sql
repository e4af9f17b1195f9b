{#- Generic tests of this project (no package hub is reachable from here, so
    these replace dbt_utils' equivalents). Each returns the failing rows. -#}

{#- No two rows share the values of `columns`: a composite key. -#}
{% test unique_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Every non-null value lies in [min_value, max_value]. -#}
{% test within_range(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and (1 = 0
    {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %})
{% endtest %}

{#- The sum of `column_name` in this model equals the sum of `expression`
    in `compare_model`, overall or per `group_by` columns (present in both):
    a mart keeps every unit of the gold table it is built from. Floating
    sums differ by order, hence a relative tolerance. -#}
{% test totals_match(model, column_name, compare_model, expression, group_by=[], relative_tolerance=0.000000001) %}
with mart as (
    select {% for column in group_by %}{{ column }}, {% endfor %}sum({{ column_name }}) as total
    from {{ model }}
    {% if group_by %}group by {{ group_by | join(', ') }}{% endif %}
),

source_totals as (
    select {% for column in group_by %}{{ column }}, {% endfor %}sum({{ expression }}) as total
    from {{ compare_model }}
    {% if group_by %}group by {{ group_by | join(', ') }}{% endif %}
)

select
    {% for column in group_by %}coalesce(mart.{{ column }}, source_totals.{{ column }}) as {{ column }}, {% endfor %}
    mart.total as mart_total,
    source_totals.total as source_total
from mart
full outer join source_totals
    on {% for column in group_by %}mart.{{ column }} = source_totals.{{ column }} and {% endfor %}1 = 1
where abs(coalesce(mart.total, 0) - coalesce(source_totals.total, 0))
    > {{ relative_tolerance }} * greatest(1, abs(coalesce(source_totals.total, 0)))
{% endtest %}
