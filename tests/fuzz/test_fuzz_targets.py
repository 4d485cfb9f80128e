"""Every outside-input parser under hypothesis, and the committed seed corpus replayed.

``tests/data/corpus/<target>/`` holds seed inputs (valid files of each kind, the catalogue's
hostile shapes, and every input that once broke a parser); each is replayed on every run with a
time and memory bound. The property tests mutate those seeds and generate raw bytes, bounded by
``max_examples`` so the normal run stays fast; ``GLEXEC_FUZZ_EXAMPLES=20000 pytest tests/fuzz``
is the longer campaign (SECURITY.md).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from fuzz_targets import MAX_INPUT, MEMORY_BOUND, TARGETS, TIME_BOUND, run_target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
EXAMPLES = int(os.environ.get("GLEXEC_FUZZ_EXAMPLES", "60"))


def seeds(name: str) -> list[bytes]:
    directory = CORPUS / name
    return [p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()]


def bounded_run(name: str, data: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run_target(name, data)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < TIME_BOUND, f"{name}: {elapsed:.2f} s on {data[:100]!r}"
    assert peak < MEMORY_BOUND, f"{name}: {peak} bytes on {data[:100]!r}"


def test_every_target_has_a_seed_corpus():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(TARGETS)
    for name in TARGETS:
        assert len(seeds(name)) >= 3, name


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_replays_cleanly(name):
    for data in seeds(name):
        bounded_run(name, data)


@st.composite
def mutated(draw, name: str) -> bytes:
    """A seed with a few byte-level edits: the cheap half of what a coverage fuzzer does."""
    pool = seeds(name)
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "splice", "repeat"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(pool))
            data[pos:] = other[draw(st.integers(0, len(other))):]
        elif op == "repeat":
            chunk = bytes(data[pos:pos + draw(st.integers(1, 32))])
            data[pos:pos] = chunk * draw(st.integers(1, 64))
    return bytes(data[:MAX_INPUT])


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_seeds(name):
    @SETTINGS
    @given(mutated(name))
    def check(data):
        bounded_run(name, data)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_raw_bytes(name):
    @SETTINGS
    @given(st.binary(max_size=2048))
    def check(data):
        bounded_run(name, data)

    check()
