"""The HTTP API: ``create_app()`` in ``main``, one router per resource in ``routes``."""
