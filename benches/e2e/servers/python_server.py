"""The end-to-end benchmark's Python peer: the official Python SDK (`mcp`
from PyPI) serving Streamable HTTP through its StreamableHTTPSessionManager
(MCPServer.streamable_http_app), with the SDK's default session cap and
idle timeout unless told otherwise, the tools `echo` and a per-session
`counter`, and `GET /stats` (`{"live": N}`: the manager's open sessions).

python python_server.py --port N [--idle-timeout-s S] [--max-sessions N]
Prints `listening on http://127.0.0.1:PORT/mcp` on stdout once it serves.
"""

import argparse
import weakref

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TIMEOUT

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--idle-timeout-s", type=float, default=DEFAULT_SESSION_IDLE_TIMEOUT)
parser.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
args = parser.parse_args()

server = MCPServer("e2e-python-peer")
# One count per session object (the SDK runs one ServerSession per MCP
# session); weak keys, so a closed session's count goes with it.
counts: "weakref.WeakKeyDictionary[object, int]" = weakref.WeakKeyDictionary()


@server.tool(description="Returns its text unchanged")
def echo(text: str) -> str:
    return text


@server.tool(description="Increments a per-session counter and returns it")
def counter(ctx: Context) -> str:
    session = ctx.session
    counts[session] = counts.get(session, 0) + 1
    return str(counts[session])


@server.custom_route("/stats", methods=["GET"])
async def stats(_request: Request) -> JSONResponse:
    return JSONResponse({"live": len(server.session_manager._server_instances)})


app = server.streamable_http_app(
    session_idle_timeout=args.idle_timeout_s,
    max_sessions=args.max_sessions,
)


class Announce(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        print(f"listening on http://127.0.0.1:{args.port}/mcp", flush=True)


Announce(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")).run()
