"""``TickBatch``: the scripts one event-loop tick calls go to Redis as one pipeline.

Under load a tick carries many purchases, and each one's script alone pays a pooled
connection, a ``write()`` and a ``read()``. Collected until the loop's next turn, they go out
in one non-transactional pipeline on one connection: one write, one read of all the answers.
A script alone in its tick goes out as it would without the batch (``EVALSHA`` through the
client), so at low rates nothing changes but the wait for the next turn (microseconds).

Each call keeps its own outcome: a script's error reply (sold out is a reply, not an error;
a refusal of Redis's) fails that call only. A script Redis no longer knows (``NOSCRIPT``: a
restarted Redis forgot its cache) did not run, so it is loaded and run again, alone. A
connection lost or a deadline passed fails every call of the pipeline with the same error,
as one command's would: any of them may have run (none claims otherwise).
"""

from __future__ import annotations

import asyncio
import builtins
import time
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, TimeoutError

from ticketsys.storage.redis import Redis, TimedRedis

_Call = tuple[AsyncScript, list[str], list[str | int], "asyncio.Future[Any]"]


class TickBatch:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiting: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> asyncio.Future[Any]:
        """``script``'s reply, sent with the other calls of this tick."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((script, keys, args, reply))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return reply

    def _flush(self) -> None:
        calls, self._waiting = self._waiting, []
        if not calls:
            return  # aclose() sent them already
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._tasks.add(task)  # kept alive until done
        task.add_done_callback(self._tasks.discard)

    async def _send(self, calls: list[_Call]) -> None:
        if len(calls) == 1:
            script, keys, args, reply = calls[0]
            await _settle(reply, script(keys=keys, args=args))
            return
        redis = self._redis
        deadline = redis.deadline if isinstance(redis, TimedRedis) else None
        began = time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                pipe = redis.pipeline(transaction=False)
                for script, keys, args, _ in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
        except builtins.TimeoutError as exc:
            failed: BaseException = TimeoutError(f"no answer within {deadline:g} s")
            failed.__cause__ = exc
            replies = [failed] * len(calls)
        except Exception as exc:
            replies = [exc] * len(calls)
        timer = redis.timer if isinstance(redis, TimedRedis) else None
        if timer is not None:
            seconds = time.perf_counter() - began
            for _ in calls:
                timer("redis", "EVALSHA", seconds)
        for (script, keys, args, reply), answer in zip(calls, replies, strict=True):
            if isinstance(answer, NoScriptError):  # it did not run: load it, run it again
                await _settle(reply, script(keys=keys, args=args))
            elif reply.done():
                continue  # its caller gave up waiting
            elif isinstance(answer, BaseException):
                reply.set_exception(answer)
            else:
                reply.set_result(answer)

    async def aclose(self) -> None:
        """Send what waits for the next turn, and wait for every pipeline sent (their callers
        are waiting for them)."""
        self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _settle(reply: asyncio.Future[Any], call: Any) -> None:
    try:
        answer = await call
    except Exception as exc:
        if not reply.done():
            reply.set_exception(exc)
    else:
        if not reply.done():
            reply.set_result(answer)
