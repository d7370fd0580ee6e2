"""`run.py migrate`: a competition moved whole between a JSON directory and a PostgreSQL schema.

The one package besides persistence/factory.py that imports both backends: it reads and writes each
side in its own terms (directory.py, schema.py) and proves the copies equal (competition.py)."""
