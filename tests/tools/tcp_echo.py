#!/usr/bin/env python3
"""tests/tools/tcp_echo.py — a TCP echo server for the proxy tests.

Listens on 127.0.0.1 (port 0 unless given), prints the port on stdout, and
echoes every byte back; when a client shuts down its writing side, the echo
finishes and then shuts down too (so half-close can be checked).
"""
import asyncio
import sys


async def serve(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
