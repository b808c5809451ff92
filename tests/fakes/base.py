"""Shared machinery of the loopback fake exchanges: an aiohttp app on 127.0.0.1 with control endpoints.

Run as a process (``python -m tests.fakes.<exchange> --port-file F``); the test drives it over HTTP:
  POST /_ctl/drop          close every WebSocket (the server "drops" the connection)
  POST /_ctl/silence?on=1  stop pushing data (sockets stay open, pings answered); on=0 resumes
  POST /_ctl/refuse?s=N    stop listening for N seconds (connections refused), then listen again
  POST /_ctl/malformed     push one garbage frame on every socket
  GET  /_ctl/log           every request and WS message received, for assertions (all must be loopback)
  POST /_ctl/move?by=X     shift the market's price by X (books and trades follow), to fire triggers
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiohttp import WSMsgType, web


class FakeExchange:
    def __init__(self) -> None:
        self.sockets: set[web.WebSocketResponse] = set()
        self.silent = False
        self.log: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/_ctl/drop", self.ctl_drop)
        self.app.router.add_post("/_ctl/silence", self.ctl_silence)
        self.app.router.add_post("/_ctl/refuse", self.ctl_refuse)
        self.app.router.add_post("/_ctl/malformed", self.ctl_malformed)
        self.app.router.add_get("/_ctl/log", self.ctl_log)
        self.app.router.add_post("/_ctl/move", self.ctl_move)
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None
        self.port = 0
        self.t0 = time.time()

    def record(self, request: web.Request, **extra: Any) -> None:
        self.log.append({"method": request.method, "host": request.host, "path": request.path,
                         "query": request.query_string, **extra})

    async def ctl_drop(self, request: web.Request) -> web.Response:
        for ws in list(self.sockets):
            await ws.close()
        return web.json_response({"dropped": True})

    async def ctl_silence(self, request: web.Request) -> web.Response:
        self.silent = request.query.get("on", "1") == "1"
        return web.json_response({"silent": self.silent})

    async def ctl_refuse(self, request: web.Request) -> web.Response:
        seconds = float(request.query.get("s", "3"))

        async def later() -> None:
            await asyncio.sleep(0.1)
            assert self.site is not None
            self.site._server.close()  # type: ignore[union-attr]  # stop accepting first...
            for ws in list(self.sockets):
                await ws.close()  # ...then drop the open sockets, so reconnects are refused
            await self.site.stop()
            await asyncio.sleep(seconds)
            self.site = web.TCPSite(self.runner, "127.0.0.1", self.port)
            await self.site.start()

        asyncio.get_running_loop().create_task(later())
        return web.json_response({"refusing_for": seconds})

    async def ctl_malformed(self, request: web.Request) -> web.Response:
        for ws in list(self.sockets):
            await ws.send_str("{this is not json")
        return web.json_response({"sent": len(self.sockets)})

    async def ctl_move(self, request: web.Request) -> web.Response:
        self.move(float(request.query["by"]))
        await self.moved()
        return web.json_response({"moved": float(request.query["by"])})

    def move(self, by: float) -> None:
        """Shift the fake market's price (each fake moves its own books)."""

    async def moved(self) -> None:
        """After a move (or a tick): fire the trigger orders the new price crosses (fakes with accounts)."""

    async def ctl_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log)

    async def push(self, ws: web.WebSocketResponse, frame: Any) -> None:
        """Send one JSON frame; a socket that closed meanwhile is simply skipped."""
        try:
            await ws.send_str(json.dumps(frame))
        except ConnectionError:
            pass

    async def websocket(self, request: web.Request, on_message: Any) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.sockets.add(ws)
        self.record(request, ws=True)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.log.append({"ws": request.path, "host": request.host, "frame": msg.data})
                    await on_message(ws, msg.data)
        finally:
            self.sockets.discard(ws)
        return ws

    async def serve(self, port_file: str) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await self.site.start()
        self.port = self.site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        with open(port_file + ".tmp", "w") as fh:
            fh.write(str(self.port))
        import os

        os.replace(port_file + ".tmp", port_file)
        await self.run_feeds()

    subs: dict[web.WebSocketResponse, Any]  # each fake: socket -> its subscriptions

    def tick(self) -> None:
        """Move the fake market one step (every 100 ms while not silenced)."""

    def frame(self, subscription: Any) -> Any:
        """The frame to push for one subscription this tick, or None."""
        return None

    async def run_feeds(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self.silent:
                continue
            self.tick()
            await self.moved()
            for ws, subs in list(self.subs.items()):
                if ws.closed:
                    self.subs.pop(ws, None)
                    continue
                for sub in list(subs):
                    frame = self.frame(sub)
                    if frame is not None:
                        await self.push(ws, frame)


def main(fake_cls: type[FakeExchange]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ns = ap.parse_args()
    asyncio.run(fake_cls().serve(ns.port_file))
