{#- The sum of an integer column as a 64-bit integer: DuckDB widens integer
    sums to HUGEINT, which several BI drivers cannot read. -#}
{% macro int_sum(expression) -%}
    cast(sum({{ expression }}) as {{ dbt.type_bigint() }})
{%- endmacro %}
