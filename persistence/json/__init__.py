"""The JSON-files storage backend. Outside persistence/, only persistence/factory.py imports it."""
