"""Prometheus metrics: `GET /metrics` (admin-only) and, when asked for, an open address for a
scraper. The numbers are plain counters the code keeps anyway (actors/tallies.py and the objects
that own them); they become metric families only when someone scrapes (families.py)."""
