"""write_rows is atomic when several processes export the same task file at once (the demo's seeds do)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor


def _write(path: str, n: int) -> int:
    from openrft.data.validate import write_rows

    for _ in range(20):
        write_rows(({"i": i, "writer": n} for i in range(200)), path)
    return n


def test_concurrent_writers_never_lose_the_file_or_mix_rows(tmp_path):
    path = tmp_path / "tasks" / "train.jsonl"
    with ProcessPoolExecutor(3) as pool:
        assert sorted(pool.map(_write, [str(path)] * 3, range(3))) == [0, 1, 2]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["i"] for r in rows] == list(range(200)) and len({r["writer"] for r in rows}) == 1
    assert not list(path.parent.glob("*.partial"))
