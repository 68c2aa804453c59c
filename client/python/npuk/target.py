"""Where the daemon listens; the same lookup as npukd and the C++ client."""

import os
import stat
from typing import Optional

SYSTEM_SOCKET = "/run/npukd/npukd.sock"


def default_socket_path() -> str:
    """$NPUK_SOCKET, $RUNTIME_DIRECTORY/npukd.sock, $XDG_RUNTIME_DIR/npukd.sock,
    /run/npukd/npukd.sock for root, else /tmp/npukd-<uid>.sock."""
    if os.environ.get("NPUK_SOCKET"):
        return os.environ["NPUK_SOCKET"]
    if os.environ.get("RUNTIME_DIRECTORY"):
        # systemd joins several RuntimeDirectory= entries with ':'.
        return os.environ["RUNTIME_DIRECTORY"].split(":")[0] + "/npukd.sock"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.environ["XDG_RUNTIME_DIR"] + "/npukd.sock"
    if os.getuid() == 0:
        return SYSTEM_SOCKET
    return "/tmp/npukd-%d.sock" % os.getuid()


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def default_target() -> str:
    """$NPUK_TARGET, else unix:<default_socket_path()>; a user without a
    daemon of their own reaches the system one at /run/npukd/npukd.sock."""
    if os.environ.get("NPUK_TARGET"):
        return os.environ["NPUK_TARGET"]
    path = default_socket_path()
    if not _is_socket(path) and _is_socket(SYSTEM_SOCKET):
        path = SYSTEM_SOCKET
    return "unix:" + path


def resolve_target(target: Optional[str]) -> str:
    """unix:PATH or HOST:PORT (None/"" = default_target()) as a gRPC target."""
    if not target:
        return default_target()
    if target.startswith(("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:")):
        if target.endswith(":"):
            raise ValueError("target %r has no address after the scheme; use "
                             "unix:/path/to/npukd.sock or HOST:PORT" % target)
        return target
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port:
        raise ValueError("target %r is neither unix:PATH nor HOST:PORT; e.g. "
                         "unix:/run/npukd/npukd.sock or 127.0.0.1:8001" % target)
    return target
