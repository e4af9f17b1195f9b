-- The video catalogue the workers join (metadata/video_metadata.csv, as a seed).
select
    title_id,
    title,
    genre,
    creator,
    duration_seconds,
    content_type,
    release_year,
    maturity_rating
from {{ ref('video_metadata') }}
