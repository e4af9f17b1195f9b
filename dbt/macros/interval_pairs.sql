{#- One row per (start, end) pair of a flattened interval list
    [start, end, start, end, ...] (gold's unique_watch_intervals), with every
    other column of `relation`. Lists have no portable SQL, hence dispatch. -#}
{% macro interval_pairs(relation, list_column) -%}
    {{ return(adapter.dispatch('interval_pairs', 'streamreel')(relation, list_column)) }}
{%- endmacro %}

{% macro default__interval_pairs(relation, list_column) -%}
    select
        source_rows.*,
        element_at(source_rows.{{ list_column }}, pair_position + 1) as interval_start,
        element_at(source_rows.{{ list_column }}, pair_position + 2) as interval_end
    from {{ relation }} as source_rows
    lateral view posexplode(source_rows.{{ list_column }}) pairs as pair_position, pair_value
    where pair_position % 2 = 0
{%- endmacro %}

{% macro duckdb__interval_pairs(relation, list_column) -%}
    select
        * exclude (pair_position),
        {{ list_column }}[pair_position] as interval_start,
        {{ list_column }}[pair_position + 1] as interval_end
    from (
        select *, unnest(generate_series(1, len({{ list_column }}), 2)) as pair_position
        from {{ relation }}
    ) as source_rows
{%- endmacro %}
