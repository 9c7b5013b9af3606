"""The OpenAI backend's clients never send on a connection idle long enough for the server to close it.

``vllm serve`` (uvicorn) closes a keep-alive connection after 5 idle seconds; httpx's default
pool also keeps it 5 s, so a request sent at that moment went out on a closing connection and
failed (``lost the connection``; measured on loopback: 3 of 30 bursts sent 4.95-5.05 s after the
previous one). That race cannot be timed in a test, so this server makes its outcome certain:
a request that arrives on a connection idle for longer than the client's expiry is dropped
unanswered, as the closing server drops it. A client that expires idle connections first
opens a new one and is answered.
"""

import asyncio
import json
import socket
import threading
import time

import pytest

openai = pytest.importorskip("openai")

from cascadec.runtime.backends.openai_http import KEEPALIVE_EXPIRY_S, make_client  # noqa: E402

IDLE_S = KEEPALIVE_EXPIRY_S + 0.6  # idle time between the two requests
CLOSING_AFTER_S = KEEPALIVE_EXPIRY_S + 0.3  # idle time after which the server drops a request


class ClosingServer:
    """HTTP/1.1 on loopback answering ``GET /v1/models``; keeps connections alive, like uvicorn."""

    def __init__(self):
        self.connections = 0
        self.dropped = 0
        self.loop = asyncio.new_event_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.handle, sock=self.sock), self.loop
        ).result(5)
        return self

    def __exit__(self, *exc):
        async def shut():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def handle(self, reader, writer):
        self.connections += 1
        last = time.monotonic()
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # a GET: the head is the whole request
                if time.monotonic() - last > CLOSING_AFTER_S:  # the server was closing it meanwhile
                    self.dropped += 1
                    break
                body = json.dumps(
                    {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x"}]}
                )
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n{body}".encode()
                )
                await writer.drain()
                last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):  # the client closed it
            pass
        finally:
            writer.close()


def test_a_connection_idle_past_the_expiry_is_never_reused():
    with ClosingServer() as server:
        client = make_client(f"http://127.0.0.1:{server.port}/v1", "k", 10, 0, asynchronous=False)
        assert [m.id for m in client.models.list()] == ["m"]
        time.sleep(IDLE_S)
        assert [m.id for m in client.models.list()] == ["m"]  # before: APIConnectionError
        client.close()
    assert server.dropped == 0 and server.connections == 2


def test_the_asyncio_client_too():
    async def twice(port):
        client = make_client(f"http://127.0.0.1:{port}/v1", "k", 10, 0, asynchronous=True)
        first = [m.id async for m in client.models.list()]
        await asyncio.sleep(IDLE_S)
        second = [m.id async for m in client.models.list()]
        await client.close()
        return first, second

    with ClosingServer() as server:
        assert asyncio.run(twice(server.port)) == (["m"], ["m"])
    assert server.dropped == 0 and server.connections == 2


def test_a_connection_used_within_the_expiry_is_reused():
    """The expiry only drops idle connections: back-to-back requests share one."""
    with ClosingServer() as server:
        client = make_client(f"http://127.0.0.1:{server.port}/v1", "k", 10, 0, asynchronous=False)
        for _ in range(3):
            client.models.list()
        client.close()
    assert server.connections < 3  # 1, or 2 if the machine stalled for 2 s between two of them
