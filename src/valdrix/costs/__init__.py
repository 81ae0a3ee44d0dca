"""Cost data: FOCUS files and AWS Cost Explorer, stored at daily grain with every reading kept.

Where things are (docs/costs.md says what they do):

- ``sources/``: where cost data comes from. ``focus_files`` imports files a user hands over (CLI,
  upload); ``s3_exports`` finds and reads the deliveries of a FOCUS export on S3 and ``s3_pull``
  is that job's work; ``cost_explorer`` reads AWS Cost Explorer and ``cost_explorer_pull`` is that
  job's work; ``pull_failures`` is what both pulls do when AWS or the customer's set-up fails.
- ``ingest/``: the import pipeline every source feeds. ``focus`` reads a FOCUS delivery (opening
  files in ``focus_streams``, checking cells in ``focus_values``) into ``records`` (the spool of
  daily records, a ``SourceBatch``); ``reconcile`` commits a batch as one run of its source.
- Reading: ``reading`` (cost queries, runs, adjustments, readings of a day, for ``endpoints`` and
  the CLI) and ``billing`` (findings priced from the bill).
- ``repositories/``: the SQL (``ingest`` for committing a run, ``reading`` for the reads);
  ``models``, ``schemas``; ``tasks`` (job entry points) and ``scheduling`` (queueing them daily).
"""
