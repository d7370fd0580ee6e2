"""The core's side of the edges: what it publishes to Redis after each commit, and the names and
shapes both sides read (wire.py). The edges' side is transport/edge/."""
