"""Retrieval evaluation (``inhouse eval``): data sets, metrics, and runs through the service's
own retrieval code."""
