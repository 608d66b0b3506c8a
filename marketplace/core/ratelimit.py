"""Rate limits kept in Redis, so they hold across API replicas. Each check is one Lua script: the decision
and the counting happen atomically, and a refused attempt is never counted (so a client that waits the
``Retry-After`` it was given is let in).

- :class:`RateLimiter`: a sliding window per identity (registration per client IP, token refresh).
- :class:`LoginLimiter`: sign-in. Failures only, never successes: an attempt is counted when it starts and
  un-counted when it succeeds, so parallel guesses cannot slip between check and count, and a factory of
  300 people behind one NAT signing in at shift start is never refused. Three counters:

  * per client IP: at most ``ip_limit`` failed sign-ins per window (a NAT-sized limit; it stops one
    address from spraying passwords over many accounts);
  * per account and client IP: after ``free_failures`` failures, exponential back-off (1 s, 2 s, 4 s ...
    capped at ``max_seconds``), so one address guessing one password slows down fast;
  * per account over all addresses: the same back-off after ``account_free_failures`` failures (many
    addresses guessing one password). It starts later, so an attacker on one address cannot lock the
    real user out: the user, from another address, is only held back once the account-wide count is
    reached, and then only for the back-off window.

  A successful sign-in clears the account's counters (both) and un-counts its attempt on the IP.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from marketplace.core.errors import RateLimited
from marketplace.core.settings import Settings

# KEYS: the identities' sorted sets. ARGV: now, window, limit, member.
# Returns 0 (counted) or the seconds until the oldest attempt of a full window leaves it.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local free_at = tonumber(oldest[2]) + window
    if free_at - now > wait then wait = free_at - now end
  end
end
if wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('EXPIRE', key, math.ceil(window) + 1)
end
return '0'
"""

# KEYS[1]: the IP's sorted set of failures; KEYS[2..]: back-off hashes {n, until}.
# ARGV: now, window, ip_limit, member, base, max, memory, then one free-failure count per back-off key.
# Returns '0' (attempt counted) or the seconds to wait.
_LOGIN_BEGIN = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local ip_limit = tonumber(ARGV[3])
local base = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local memory = tonumber(ARGV[7])
local wait = 0
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= ip_limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
for i = 2, #KEYS do
  local untl = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if untl - now > wait then wait = untl - now end
end
if wait > 0 then return tostring(wait) end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
for i = 2, #KEYS do
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  local free = tonumber(ARGV[6 + i])
  if n >= free then
    local delay = math.min(cap, base * 2 ^ (n - free))
    redis.call('HSET', KEYS[i], 'until', tostring(now + delay))
  end
  redis.call('EXPIRE', KEYS[i], memory)
end
return '0'
"""


def _retry_after(wait: float) -> int:
    """Whole seconds a client must wait: rounded up, so waiting exactly this long is always enough."""
    return max(1, math.ceil(wait - 1e-6))


def _refuse(wait: float) -> RateLimited:
    retry = _retry_after(wait)
    return RateLimited(f"Too many attempts. Try again in {retry} seconds.", extra={"retry_after": retry})


class RateLimiter:
    """At most ``limit`` attempts per identity in any ``window_seconds``; refused attempts are not counted."""

    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        window_seconds: float,
        namespace: str = "rl",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.namespace = namespace
        self.clock = clock
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, bucket: str, *identities: str) -> None:
        """Count one attempt for each identity, or raise 429 (counting nothing) when any of them already has
        ``limit`` attempts in the last window; ``retry_after`` is when the oldest of them leaves it."""
        keys = [f"{self.namespace}:{bucket}:{ident}" for ident in identities if ident]
        if not keys:
            return
        member = uuid.uuid4().hex
        wait = float(await self._script(keys=keys, args=[repr(self.clock()), self.window, self.limit, member]))
        if wait > 0:
            raise _refuse(wait)


@dataclass(frozen=True)
class LoginTicket:
    """One counted sign-in attempt; hand it back to :meth:`LoginLimiter.succeeded` when it succeeds."""

    ip_key: str
    account_keys: tuple[str, ...]
    member: str


class LoginLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        ip_limit: int = 300,
        window_seconds: float = 60,
        free_failures: int = 5,
        account_free_failures: int = 20,
        base_seconds: float = 1.0,
        max_seconds: float = 900.0,
        memory_seconds: int = 86_400,
        namespace: str = "login",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.ip_limit = ip_limit
        self.window = window_seconds
        self.free_failures = free_failures
        self.account_free_failures = account_free_failures
        self.base = base_seconds
        self.max = max_seconds
        self.memory = memory_seconds
        self.namespace = namespace
        self.clock = clock
        self._begin = redis.register_script(_LOGIN_BEGIN)

    async def begin(self, *, ip: str, account: str) -> LoginTicket:
        """Count a sign-in attempt as a failure until :meth:`succeeded` says otherwise, or raise 429 (counting
        nothing) while the address has too many failures or the account is backing off."""
        account = account.strip().lower()
        ip_key = f"{self.namespace}:ip:{ip}"
        account_keys = (f"{self.namespace}:acct-ip:{account}|{ip}", f"{self.namespace}:acct:{account}")
        member = uuid.uuid4().hex
        args: list[str | int | float] = [
            repr(self.clock()),
            self.window,
            self.ip_limit,
            member,
            self.base,
            self.max,
            self.memory,
            self.free_failures,
            self.account_free_failures,
        ]
        wait = float(await self._begin(keys=[ip_key, *account_keys], args=args))
        if wait > 0:
            raise _refuse(wait)
        return LoginTicket(ip_key=ip_key, account_keys=account_keys, member=member)

    async def succeeded(self, ticket: LoginTicket) -> None:
        """The attempt signed in: it was no failure, and the account's failures are forgiven."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(ticket.ip_key, ticket.member)
            pipe.delete(*ticket.account_keys)
            await pipe.execute()


def login_limiter(redis: Redis, settings: Settings, *, namespace: str = "login") -> LoginLimiter:
    return LoginLimiter(
        redis,
        ip_limit=settings.auth_login_ip_failure_limit,
        window_seconds=settings.auth_rate_window_seconds,
        free_failures=settings.auth_login_free_failures,
        account_free_failures=settings.auth_account_free_failures,
        max_seconds=settings.auth_backoff_max_seconds,
        namespace=namespace,
    )
