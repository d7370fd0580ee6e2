"""Edge processes (`run.py edge`): serve spectators from what the core publishes to Redis.

An edge holds no storage and never writes anywhere: it keeps the newest record of each box
(mirror.py) and serves the same spectator routes as the core with the same code (the hub, the
subscribers, transport/http/public.py and the public sockets of transport/ws/endpoints.py).
"""
