"""Governance: per-team carbon budgets, the energy model, an append-only ledger, reports.

Modules: ``energy`` (CCF power model) and ``quantities``; ``pods`` and
``accounting`` (a finished pod to its priced record); ``history`` (grid
intensity over a run); ``ledger`` (SQLite/PostgreSQL, append-only);
``collector`` (pod watch); ``budgets`` and ``periods``; ``report``,
``render`` and ``charts``; ``service`` and ``cli``.
"""
