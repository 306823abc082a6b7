"""Access control: API keys, the rules over a ``Caller``, the audit log, rate limits, hardening.

``keys`` (KeyStore: create, list, revoke, verify), ``caller`` (scopes, collections,
``searchable``), ``audit`` (append-only JSON lines + ASGI middleware), ``ratelimit``
(per-key limits; ``ratelimit_db``: counted in PostgreSQL for all replicas), ``hardening``
(body limits, security headers, CORS, upload names), ``bootstrap`` (what happens at start:
INHOUSE_AUTH, INHOUSE_ADMIN_KEY, first-run help).
"""
