"""Sliding-window rate limits kept in Redis, so they hold across API replicas.

Each identity (client IP, e-mail) has a sorted set of attempt times; an attempt counts the attempts of
the last ``window_seconds``. Unlike fixed windows there is no burst at window boundaries."""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

from marketplace.errors import RateLimited


class RateLimiter:
    def __init__(self, redis: Redis, *, limit: int, window_seconds: int, namespace: str = "rl") -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.namespace = namespace

    async def hit(self, bucket: str, *identities: str) -> None:
        """Count one attempt for each identity (e.g. client IP and e-mail); raise 429 when any of them has
        more than ``limit`` attempts in the last window."""
        keys = [f"{self.namespace}:{bucket}:{ident}" for ident in identities if ident]
        if not keys:
            return
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.zremrangebyscore(key, 0, now - self.window)
                pipe.zadd(key, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.expire(key, self.window + 1)
            results = await pipe.execute()
        over = []
        for i in range(len(keys)):
            count, oldest = results[i * 5 + 2], results[i * 5 + 3]
            if int(count) > self.limit:
                oldest_at = float(oldest[0][1]) if oldest else now
                over.append(max(1, int(oldest_at + self.window - now) + 1))
        if over:
            retry = max(over)
            raise RateLimited(f"Too many attempts. Try again in {retry} seconds.", extra={"retry_after": retry})
