"""A TCP proxy on 127.0.0.1 that we can cut and restore (partitions) and that counts bytes (bandwidth)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from microdc.control.devserver import free_port


class Proxy:
    def __init__(self, target_port: int, port: int | None = None):
        self.target_port = target_port
        self.port = port or free_port()
        self.up_bytes = 0  # client → server
        self.down_bytes = 0  # server → client
        self.connections = 0
        self.cut_flag = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._thread.start()
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
        try:
            while not self.cut_flag:
                data = await r.read(65536)
                if not data or self.cut_flag:
                    break
                if up:
                    self.up_bytes += len(data)
                else:
                    self.down_bytes += len(data)
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if self.cut_flag:
            cw.transport.abort()
            return
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            cw.transport.abort()
            return
        self.connections += 1
        self._writers |= {cw, sw}
        try:
            await asyncio.gather(self._pipe(cr, sw, True), self._pipe(sr, cw, False))
        finally:
            self._writers -= {cw, sw}

    def cut(self) -> None:
        """Partition: drop every live connection and refuse new ones."""

        def _cut() -> None:
            self.cut_flag = True
            for w in list(self._writers):
                w.transport.abort()

        self._loop.call_soon_threadsafe(_cut)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "cut_flag", False)

    def reset_counters(self) -> None:
        self.up_bytes = self.down_bytes = 0

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
