"""Storage keeps any box id; the rules' range (actors/rules/limits.py) is the recovery's business:
a box outside it is left as it is stored, logged, and not restored."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, make_config, serving
from tests.transport.test_live_protocol import command, init_route, post
from transport.app import create_app
from transport.keys import REGISTRY


def copy_box(data: Path, source: int, target: int) -> None:
    """Box `source`'s checkpoint and events, stored a second time as box `target`."""
    checkpoint = orjson.loads((data / "boxes" / f"{source}.json").read_bytes())
    checkpoint["boxId"] = target
    (data / "boxes" / f"{target}.json").write_bytes(orjson.dumps(checkpoint))
    lines = (data / "events.ndjson").read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    copies = [orjson.dumps({**event, "boxId": target}) + b"\n" for event in events if event.get("boxId") == source]
    with open(data / "events.ndjson", "ab") as log:
        log.write(b"".join(copies))


async def test_a_box_outside_the_rules_range_is_kept_in_storage_but_not_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    async with serving(create_app(make_config(data))) as client:
        assert (await post(client, init_route(5)))[0] == 200
        assert (await command(client, 5, "PROGRESS_UPDATE", delta=1))[0] == 200
    copy_box(data, 5, 10000)
    stored = (data / "boxes" / "10000.json").read_bytes()

    with caplog.at_level(logging.WARNING, logger="belay.recovery"):
        async with serving(create_app(make_config(data))) as client:
            assert client.app[REGISTRY].box_ids() == [5]
            assert client.app[REGISTRY].unavailable_boxes() == {}

    assert "outside the box-id range 0..9999" in caplog.text and "10000" in caplog.text
    assert (data / "boxes" / "10000.json").read_bytes() == stored  # neither restored, rewritten nor set aside
    assert not (data / "boxes" / "quarantine").exists()

    check = subprocess.run([sys.executable, str(ROOT / "run.py"), "check", "--storage-dir", str(data)], check=False,
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "warning: box id(s) 10000 are outside the box-id range 0..9999" in check.stdout
    assert "1 of 1 box(es) replay consistently" in check.stdout
