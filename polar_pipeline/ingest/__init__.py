"""Ways data comes in, as raw batches for ``warehouse.raw_store``: today the AccessLink streams."""
