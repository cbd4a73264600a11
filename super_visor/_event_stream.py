"""EventStream: the receiving end of ``handle.events()``, bounded so it never holds up the
supervisor: when its reader falls behind, the *newest* events are dropped (the reader keeps
a consistent prefix) and counted in ``dropped``."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio

from ._eventlog import log_fields

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._events import Event, EventHub

__all__ = ("EventStream",)


@final
class EventStream:
    """The receiving end of ``handle.events()``: ``async for event in stream``.

    .. versionadded:: 0.1
    """

    __slots__ = ("_hub", "_receive", "_send", "dropped")

    def __init__(self, hub: EventHub, buffer: int) -> None:
        self._hub = hub
        self._send: MemoryObjectSendStream[Event]
        self._receive: MemoryObjectReceiveStream[Event]
        self._send, self._receive = anyio.create_memory_object_stream(buffer)
        #: Events not delivered because this reader was ``buffer`` events behind.
        self.dropped = 0

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving; the hub forgets this stream."""
        self._hub._streams.discard(self)
        self._send.close()
        self._receive.close()

    def _offer(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            if self.dropped == 0:
                self._hub.logger.warning(
                    "an events() reader is too slow; dropping the newest events (counted "
                    "in EventStream.dropped) so the supervisor is never held up",
                    extra=log_fields(event),
                )
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._hub._streams.discard(self)
