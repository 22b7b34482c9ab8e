"""In-process token buckets (per client IP, per site, per user name), thread-safe.

Each uvicorn worker has its own buckets, so with N workers the effective limit is at most N× — noted
in docs/control-plane.md. Keys are evicted (oldest first) beyond `max_keys` so memory stays bounded.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        capacity: int,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = per_second
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens; returns 0 when allowed, else seconds until it would be allowed."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (cost - tokens) / self.rate
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


class RateLimits:
    """The buckets of one app instance, built from settings."""

    def __init__(
        self,
        *,
        login: tuple[int, float],
        enroll: tuple[int, float],
        rotate: tuple[int, float],
        security_audit: tuple[int, float],
        site: tuple[int, float] = (300, 10.0),
    ) -> None:
        self.login_ip = TokenBucket(*login)
        self.login_user = TokenBucket(*login)
        self.enroll_ip = TokenBucket(*enroll)
        self.enroll_site = TokenBucket(*enroll)
        self.rotate_site = TokenBucket(*rotate)
        self.security_audit_ip = TokenBucket(*security_audit)
        self.site = TokenBucket(*site)  # every request of one site credential
