"""Sweep and config bombs: each is refused with a message (exit-2 material), under a
memory limit, never built. Run in a child process with RLIMIT_AS so a regression is a
MemoryError there, not a swapping test machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi"))
DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"
BIG_INT = "name: r\nseed: " + "9" * 5000 + "\n"
UNHASHABLE = "? [1, 2]\n: x\n"
SEEDS_BOMB = "name: s\nbase: {name: s}\nseeds: 1000000000\n"

CASES = {
    "alias_bomb_config": ("config", ALIAS_BOMB, "alias"),
    "alias_bomb_sweep": ("sweep", "name: s\n" + ALIAS_BOMB, "alias"),
    "deep_config": ("config", DEEP, "deep"),
    "deep_sweep": ("sweep", DEEP, "deep"),
    "big_int_config": ("config", BIG_INT, ""),
    "big_int_sweep": ("sweep", "name: s\nseeds: " + "9" * 5000 + "\n", ""),
    "unhashable_config": ("config", UNHASHABLE, "key"),
    "unhashable_sweep": ("sweep", UNHASHABLE, "key"),
    "seeds_bomb": ("sweep", SEEDS_BOMB, "at most"),
    "non_utf8_sweep": ("sweep", b"name: \xff\xfe\n", "UTF-8"),
}

CHILD = textwrap.dedent("""
    import resource, sys, json
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
    kind, path = sys.argv[1], sys.argv[2]
    from engine.config import ConfigError
    try:
        if kind == "config":
            from engine import config
            config.load(path)
        else:
            from engine.sweep import spec
            spec.load(path)
    except ConfigError as exc:
        print(json.dumps({"refused": str(exc)[:2000]}))
        sys.exit(0)
    print(json.dumps({"accepted": True}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
@pytest.mark.parametrize("case", sorted(CASES))
def test_bomb_is_refused_with_a_short_message(tmp_path, case):
    kind, text, words = CASES[case]
    f = tmp_path / "bomb.yaml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(f)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert "refused" in res, res
    assert words.lower() in res["refused"].lower()
    assert len(res["refused"]) < 1000      # values are cut, never repr'd whole


def test_safe_yaml_keeps_ordinary_aliases():
    from engine.config import safe_yaml
    assert safe_yaml.load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
