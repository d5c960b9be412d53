"""Market-data service: file readers, validation, the Parquet store, aggregation and exchange downloads."""
