"""The import pipeline every source feeds: a FOCUS delivery read into daily records, and a batch
of records committed as one run of its source (see ``valdrix.costs``)."""
