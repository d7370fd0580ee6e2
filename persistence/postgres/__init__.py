"""The PostgreSQL backend (STORAGE_MODE=postgres). Only persistence/factory.py imports it, when picked."""
