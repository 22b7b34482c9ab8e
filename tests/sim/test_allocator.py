"""The block engine's allocator setting (microdc.sim.allocator): glibc only, opt-out, only upwards."""

from __future__ import annotations

import platform
import sys

import pytest

from microdc.sim import allocator

ON_GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


def _recorder(calls: list[tuple[int, int]]) -> object:
    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    return lambda: mallopt


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_trim_set", 0)
    monkeypatch.delenv("MICRODC_KEEP_BLOCK_MEMORY", raising=False)


def test_opt_out_leaves_the_allocator_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(allocator, "_mallopt", _recorder(calls))
    monkeypatch.setenv("MICRODC_KEEP_BLOCK_MEMORY", "0")
    assert allocator.keep_block_memory(16_000_000) is False
    assert calls == []


def test_thresholds_are_raised_once_and_only_upwards(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(allocator, "_mallopt", _recorder(calls))
    assert allocator.keep_block_memory(16_000_000)
    assert calls == [
        (allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD_BYTES),
        (allocator.M_TRIM_THRESHOLD, allocator.MIN_TRIM_BYTES),
    ]
    assert allocator.keep_block_memory(1_000)  # smaller blocks: already kept, nothing to change
    assert len(calls) == 2
    big = 64_000_000  # 8 blocks of 64 MB arrays exceed the minimum: the trim threshold follows
    assert allocator.keep_block_memory(big)
    assert calls[-1] == (allocator.M_TRIM_THRESHOLD, allocator.BLOCKS_KEPT * big)


def test_no_glibc_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_mallopt", lambda: None)
    assert allocator.keep_block_memory(16_000_000) is False
    assert allocator._trim_set == 0


@pytest.mark.skipif(not ON_GLIBC, reason="mallopt is glibc's")
def test_glibc_accepts_the_settings() -> None:
    assert allocator._mallopt() is not None
    assert allocator.keep_block_memory(16_000_000) is True
