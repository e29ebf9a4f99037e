"""An optional local HTTP endpoint with the service's metrics as Prometheus text (`PMG_METRICS_PORT`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


async def serve_metrics(render: Callable[[], str], port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """GET /metrics → the text of `render()`; anything else → 404. Local only by default: metrics
    describe the users' traffic."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)).strip():
                pass  # headers: not needed
            parts = request_line.decode("latin-1").split()
            found = len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics"
            body = render().encode() if found else b"not found\n"
            status = "200 OK" if found else "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError) as error:
            log.debug("metrics request dropped: %s", error)
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
