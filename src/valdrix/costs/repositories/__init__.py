"""The costs domain's SQL: ``ingest`` for committing a run, ``reading`` for everything read."""
