"""The batch: a personalised week for every listener of a roster, built on this machine's
cores or on a Dask cluster (``audioguide batch``)."""
