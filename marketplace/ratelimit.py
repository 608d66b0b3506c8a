"""Fixed-window rate limits kept in Redis, so they hold across API replicas."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from marketplace.errors import RateLimited


class RateLimiter:
    def __init__(self, redis: Redis, *, limit: int, window_seconds: int, namespace: str = "rl") -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.namespace = namespace

    async def hit(self, bucket: str, *identities: str) -> None:
        """Count one attempt for each identity (e.g. client IP and e-mail); raise 429 when any of them is
        over the limit in the current window."""
        window = int(time.time()) // self.window
        keys = [f"{self.namespace}:{bucket}:{ident}:{window}" for ident in identities if ident]
        if not keys:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, self.window + 1)
            results = await pipe.execute()
        counts = results[0::2]
        if any(int(c) > self.limit for c in counts):
            retry = self.window - int(time.time()) % self.window
            raise RateLimited(f"Too many attempts. Try again in {retry} seconds.", extra={"retry_after": retry})
