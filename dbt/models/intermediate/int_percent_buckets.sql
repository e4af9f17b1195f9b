-- The 100 buckets of a video's duration, 0 to 99 (bucket b: b % to b+1 %),
-- built from two digit lists so that it runs on every warehouse.
with digits as (
    select 0 as digit union all select 1 union all select 2 union all select 3 union all select 4
    union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
)

select tens.digit * 10 + ones.digit as bucket
from digits as tens
cross join digits as ones
