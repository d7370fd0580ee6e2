"""Start Belay: `python run.py` serves on 0.0.0.0:8000 with ./data. `python run.py --help` lists flags.

`python run.py check|backup|restore|audit|history|rollback|users|migrate ...` are the organiser commands
(transport/cli/); `python run.py edge --redis-url URL` serves spectators from the core's Redis (transport/edge/)."""
from __future__ import annotations

import gc

# No collections while the modules load and the boxes are restored: nearly everything made now
# lives for the whole run, and the collector would walk it again and again (about 15 ms of a
# ~250 ms start). transport/collector.py freezes it all and turns collection back on.
if __name__ == "__main__":  # not when a tool imports this module
    gc.disable()

import argparse  # after gc.disable() on purpose
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from transport.cli.main import COMMANDS, EPILOG
from transport.config import ConfigError, add_arguments, load_config

log = logging.getLogger("belay")

SWITCH_INTERVAL_S = 0.0005


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Belay: live scoring for climbing competitions (escalada-compatible API).",
        epilog="Every flag can also be set by the environment variable named in brackets; flags win.\n"
               "SIGINT/SIGTERM stop the server after flushing every box to disk.\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def unknown_command(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"run.py: unknown command {word[:40]!r}{hint}\n"
            "usage: python run.py [FLAGS]          serve; python run.py --help lists the flags\n"
            "       python run.py edge [FLAGS]     an edge for spectators; python run.py edge --help\n"
            "       python run.py COMMAND ...      an organiser command\n\n" + EPILOG)


EDGE = "edge"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == EDGE:
        from transport.edge.main import main as edge_main
        return edge_main(argv[1:], run_loop)
    if argv and argv[0] in COMMANDS:
        gc.enable()  # the organiser commands run long on big logs, unlike the server's start-up
        from transport.cli.main import main as command_main
        return command_main(argv)
    if argv and not argv[0].startswith("-"):  # a word that is neither a command nor a flag
        print(unknown_command(argv[0]), file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The server's modules load here, not at the top: a worker process (multiprocessing's spawn)
    # imports this file again, and must not pay ~250 ms of CPU for aiohttp and the whole app.
    from transport.server import serve
    return run_loop(serve(config))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """The server's and the edges' event loop."""
    try:
        import uvloop
    except ImportError:
        uvloop = None
    log.info("event loop: %s", "uvloop" if uvloop else "asyncio")
    # A thread that holds the GIL (an audit read, a checkpoint) keeps it until the event loop has
    # waited this long; the default 5 ms per hand-over would stall the fan-out's slices.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        if uvloop is not None:
            return uvloop.run(main)
        return asyncio.run(main)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
