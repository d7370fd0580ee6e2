"""Start Belay: `python run.py` serves on 0.0.0.0:8000 with ./data. `python run.py --help` lists flags.

`python run.py check|backup|restore|audit|users ...` are the organiser commands (transport/cli.py)."""
from __future__ import annotations

import gc

# No collections while the modules load and the boxes are restored: nearly everything made now
# lives for the whole run, and the collector would walk it again and again (about 15 ms of a
# ~250 ms start). transport/collector.py freezes it all and turns collection back on.
if __name__ == "__main__":  # not when a tool imports this module
    gc.disable()

import argparse  # noqa: E402 - after gc.disable() on purpose
import asyncio
import logging
import signal
import sys

from aiohttp import web

from persistence.json_store import StorageLocked
from persistence.storage import StorageError
from transport.accounts_setup import StartupRefused
from transport.app import create_app
from transport.collector import keep_collections_short
from transport.cli import COMMANDS, EPILOG
from transport.config import Config, ConfigError, add_arguments, load_config
from transport.keys import HUB

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


async def serve(config: Config) -> int:
    try:
        app = create_app(config)
    except StartupRefused as exc:
        log.error("refusing to start in production mode: %s", exc)
        return 2
    runner = app_runner(app)
    try:
        await runner.setup()
    except StorageLocked as exc:
        log.error("%s", exc)
        return 2
    except (StorageError, OSError) as exc:
        log.error("cannot open storage at %s: %s", config.storage_dir, exc)
        return 2
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        await runner.cleanup()
        return 2
    collector = asyncio.create_task(keep_collections_short(app[HUB].commands_started), name="gc-freezer")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C raises KeyboardInterrupt instead
            pass
    host, port = _bound_address(runner, config)
    # Only now: a supervisor that reads this line may stop the server at once, and it must flush.
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping: no new commands, flushing the log and checkpointing every box")
        collector.cancel()
        await runner.cleanup()
    return 0


def app_runner(app: web.Application) -> web.AppRunner:
    """How the server runs `app` (tests that depend on aiohttp's connection handling use it too)."""
    return web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=10)


def _bound_address(runner: web.AppRunner, config: Config) -> tuple[str, int]:
    addresses = runner.addresses  # the port the OS picked for --port 0
    return config.host, int(addresses[0][1]) if addresses else config.port


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        gc.enable()  # the organiser commands run long on big logs, unlike the server's start-up
        from transport.cli import main as command_main
        return command_main(argv)
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
            return uvloop.run(serve(config))
        return asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
