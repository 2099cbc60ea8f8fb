"""SQL transformations: ``dbt_like_sql/`` models as staging views and user × day partitioned mart tables."""
