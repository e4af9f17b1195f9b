-- Every video: the catalogue, plus any video gold has seen without metadata
-- (so that every mart's title_id resolves here).
with catalogue as (
    select *, true as has_metadata from {{ ref('stg_video_metadata') }}
),

seen_without_metadata as (
    select distinct engagement.title_id
    from {{ ref('stg_user_video_engagement') }} as engagement
    left join catalogue on catalogue.title_id = engagement.title_id
    where catalogue.title_id is null
)

select * from catalogue
union all
select
    title_id,
    cast(null as {{ dbt.type_string() }}) as title,
    cast(null as {{ dbt.type_string() }}) as genre,
    cast(null as {{ dbt.type_string() }}) as creator,
    cast(null as double) as duration_seconds,
    cast(null as {{ dbt.type_string() }}) as content_type,
    cast(null as {{ dbt.type_int() }}) as release_year,
    cast(null as {{ dbt.type_string() }}) as maturity_rating,
    false as has_metadata
from seen_without_metadata
