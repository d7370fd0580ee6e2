"""`run.py edge`'s settings: what it needs, and what it must not hold."""
from __future__ import annotations

import argparse

import pytest

from transport.config import ConfigError
from transport.edge.config import add_edge_arguments, load_edge_config
from transport.edge.main import build_edge_parser

KEY = "spectator-key-of-this-competition-0123456789"


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_edge_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_win_over_the_environment_as_on_the_server() -> None:
    config = load_edge_config(args("--port", "9001", "--redis-prefix", "final"),
                              {"REDIS_URL": "redis://r:6379/0", "PORT": "9000", "SPECTATOR_JWT_SECRET": KEY})
    assert (config.server.port, config.redis_prefix, config.redis_url) == (9001, "final", "redis://r:6379/0")
    assert config.spectator_jwt_secret == KEY


@pytest.mark.parametrize(("environ", "says"), [
    ({"SPECTATOR_JWT_SECRET": KEY}, "needs --redis-url"),
    ({"REDIS_URL": "redis://r"}, "needs SPECTATOR_JWT_SECRET"),
    ({"REDIS_URL": "redis://r", "SPECTATOR_JWT_SECRET": KEY, "JWT_SECRET": "x" * 40}, "must not hold the key"),
    ({"REDIS_URL": "redis://r", "SPECTATOR_JWT_SECRET": "short", "ENV": "production"}, "weak"),
    ({"REDIS_URL": "redis://r", "SPECTATOR_JWT_SECRET": KEY, "REDIS_PREFIX": "a*b"}, "REDIS_PREFIX"),
    ({"REDIS_URL": "http://r", "SPECTATOR_JWT_SECRET": KEY}, "REDIS_URL must start with redis://"),
])
def test_an_edge_refuses_to_start_and_says_why(environ: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_edge_config(args(), environ)


def test_help_names_every_flag_with_its_environment_variable() -> None:
    text = " ".join(build_edge_parser().format_help().split())  # argparse wraps the lines
    for flag, env in (("--redis-url", "REDIS_URL"), ("--redis-prefix", "REDIS_PREFIX"), ("--host", "HOST"),
                      ("--port", "PORT"), ("--metrics-port", "METRICS_PORT"), ("--metrics-host", "METRICS_HOST")):
        assert flag in text and f"[env {env}]" in text
    assert "--storage-dir" not in text  # an edge has no storage


def test_an_edges_metrics_port_is_off_unless_asked_for_and_on_loopback_by_default() -> None:
    """An edge has no admin login: --metrics-port is its only /metrics."""
    environ = {"REDIS_URL": "redis://r:6379/0", "SPECTATOR_JWT_SECRET": KEY}
    assert load_edge_config(args(), environ).server.metrics_port is None
    config = load_edge_config(args("--metrics-port", "9101"), environ).server
    assert (config.metrics_host, config.metrics_port) == ("127.0.0.1", 9101)
    config = load_edge_config(args(), {**environ, "METRICS_PORT": "9102", "METRICS_HOST": "10.0.0.5"}).server
    assert (config.metrics_host, config.metrics_port) == ("10.0.0.5", 9102)
