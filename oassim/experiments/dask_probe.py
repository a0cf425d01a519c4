"""Is the peer at a ``--scheduler`` address a Dask scheduler? Asked without ever unpickling.

What it does: :func:`probe_scheduler` opens a plain TCP (or TLS) socket to the address, speaks
the first two exchanges of the Dask distributed comm protocol itself (the handshake, then the
``identity`` request) and accepts the address only when the peer's reply says ``type:
Scheduler``. Every reply is decoded with msgpack alone: no extension hook, no object hook, so
a frame that asks for pickle (distributed's ``__Pickled__`` / ``__Serialized__`` markers)
stays an inert mapping, and nothing the peer sends can run code in this process.

Why: distributed's own comm layer decodes the handshake and every reply with pickle allowed,
so ``distributed.Client`` (or ``rpc(...).identity()``) pointed at a hostile or mistyped
address runs whatever the peer sends before anything has said that it is a scheduler. The
probe makes a wrong address a one-line error, and hands the address to ``distributed.Client``
only after the peer has answered as a scheduler. It does not make an untrusted scheduler safe:
after the probe the client unpickles the results the workers send back (docs/sweeps.md,
"Trust"); only TLS with a certificate authority you control authenticates the peer.

The wire format, as read from distributed's ``comm/tcp.py`` and ``protocol/core.py``: a
message is an 8-byte unsigned length ``L`` (native byte order, little-endian on every
platform distributed runs on), then ``L`` bytes holding a frame count ``n``, ``n`` frame
lengths (8 bytes each) and the frames (frames beyond ``L`` follow as separate buffers of their
listed lengths). Frame 0 is the msgpack of the message; the other frames carry out-of-band
(possibly pickled) sub-objects, which the probe reads past and never decodes. Each side
first sends a handshake mapping (``compression``, ``python``, ``pickle-protocol``); a request
is a mapping ``{op, reply}``.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
import time
from typing import Any

from oassim.errors import SpecError

__all__ = ["probe_scheduler", "check_address", "tls_security", "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 64 * 2**20
"""Largest reply the probe reads (a scheduler's identity lists its workers: ~1 kB each)."""

_MAX_FRAMES = 4096
_WORD = struct.Struct("=Q")  # distributed packs its lengths with struct "Q" (native order)
_SOURCE = "argument --scheduler"


class _NotScheduler(Exception):
    """The peer did not answer as a Dask scheduler (the message says what it did)."""


def shown(address: str, limit: int = 80) -> str:
    """``address`` cut to ``limit`` characters for a one-line message."""
    return address if len(address) <= limit else address[:limit - 3] + "..."


def check_address(address: str) -> tuple[str, str, int]:
    """Split a scheduler address into ``(scheme, host, port)``.

    Raises
    ------
    SpecError
        Not ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (``HOST:PORT`` means tcp), or the host
        is not a possible host name (source ``argument --scheduler``).
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, loc = parse_address(address)
        if scheme not in ("tcp", "tls"):
            raise ValueError(f"scheme {scheme}:// is not supported here; an in-process (inproc://) or other "
                             "scheduler cannot be used by oassim sweep")
        host, port = parse_host_port(loc)
    except ValueError as exc:
        raise SpecError(f"not a scheduler address ({shown(str(exc), 160)}); expected tcp://HOST:PORT or "
                        "tls://HOST:PORT", source=_SOURCE) from None
    # RFC 1035 section 2.3.4: names of at most 253 characters, labels of at most 63
    if not host or len(host) > 253 or any(len(label) > 63 for label in host.strip("[]").split(".")):
        raise SpecError(f"not a scheduler address: the host name {shown(host, 40)!r} ({len(host)} characters) "
                        "is not a valid host name (labels of at most 63 characters, 253 in all)", source=_SOURCE)
    if not 0 < port < 65536:
        raise SpecError(f"not a scheduler address: port {port} is not in 1..65535", source=_SOURCE)
    return scheme, host, port


def tls_security(ca_file: str | None, cert: str | None, key: str | None = None) -> Any:
    """The ``distributed.security.Security`` of a client of a ``tls://`` scheduler.

    Parameters
    ----------
    ca_file : str
        PEM file of the certificate authority that signed the scheduler's certificate (the
        scheduler is accepted only with a certificate it signed).
    cert : str
        PEM certificate of this client (Dask TLS authenticates both sides).
    key : str, optional
        PEM private key of ``cert`` (default: read from the ``cert`` file).

    Returns
    -------
    distributed.security.Security
        With ``require_encryption``: nothing travels in clear.

    Raises
    ------
    SpecError
        A file is missing or is not a usable certificate or key (source: the option).
    """
    try:
        from distributed.security import Security
    except ImportError:
        raise SpecError("a tls:// scheduler needs dask[distributed] (pip install 'oassim[dask]')",
                        source="argument --scheduler") from None
    for flag, path in (("--tls-ca-file", ca_file), ("--tls-cert", cert)):
        if not path:
            raise SpecError("TLS needs --tls-ca-file CA.pem and --tls-cert CERT.pem (and --tls-key KEY.pem unless "
                            "the certificate file holds the key)", source=f"argument {flag}")
    for flag, path in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise SpecError(f"cannot read {shown(path)} ({exc.strerror or type(exc).__name__})",
                                source=f"argument {flag}") from None
    try:  # load the files now, one by one, so that a bad one is named before any connection
        ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, ValueError) as exc:
        raise SpecError(f"{shown(str(ca_file))} is not a PEM certificate authority file "
                        f"({getattr(exc, 'reason', None) or type(exc).__name__})",
                        source="argument --tls-ca-file") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise SpecError(f"{shown(str(cert))} with {shown(str(key or cert))} is not a PEM certificate and its "
                        f"private key ({getattr(exc, 'reason', None) or type(exc).__name__})",
                        source="argument --tls-cert" if key is None else "argument --tls-key") from None
    sec = Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)
    return sec


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise _NotScheduler("it closed the connection mid-message" if buf else "it closed the connection")
        buf += chunk
    return bytes(buf)


def _read_message(sock: socket.socket, deadline: float) -> tuple[Any, int]:
    """One comm message: frame 0 decoded with plain msgpack (the other frames are read and
    dropped), and the number of frames."""
    import msgpack

    (total,) = _WORD.unpack(_recv_exactly(sock, _WORD.size, deadline))
    if not _WORD.size <= total <= MAX_MESSAGE_BYTES:
        raise _NotScheduler(f"its first message announces {total:,} bytes, not a Dask comm frame")
    body = _recv_exactly(sock, total, deadline)
    (count,) = _WORD.unpack_from(body)
    if not 1 <= count <= min(_MAX_FRAMES, total // _WORD.size - 1):
        raise _NotScheduler(f"its message announces {count:,} frames, not a Dask comm frame")
    lengths = struct.unpack_from(f"={count}Q", body, _WORD.size)
    start = _WORD.size * (1 + count)
    if sum(lengths) + start > MAX_MESSAGE_BYTES:
        raise _NotScheduler("its message is larger than the probe reads")
    inline = body[start:]
    if lengths[0] > len(inline):  # frame 0 (the message) always travels in the first buffer
        raise _NotScheduler("its message is cut short")
    rest = sum(lengths) - len(inline)
    if rest > 0:  # out-of-band frames sent after the first buffer: read past them
        _recv_exactly(sock, rest, deadline)
    try:  # no ext_hook / object_hook: pickled or serialized sub-objects stay inert mappings
        return msgpack.unpackb(inline[:lengths[0]], raw=False, strict_map_key=False), count
    except Exception as exc:  # msgpack raises several types (ExtraData, FormatError, ValueError...)
        raise _NotScheduler(f"its reply is not msgpack ({type(exc).__name__})") from None


def _write_message(sock: socket.socket, msg: Any) -> None:
    import msgpack

    frame = msgpack.packb(msg, use_bin_type=True)
    body = _WORD.pack(1) + _WORD.pack(len(frame)) + frame
    sock.sendall(_WORD.pack(len(body)) + body)


def _handshake() -> dict[str, Any]:
    import pickle

    return {"compression": None, "python": tuple(sys.version_info)[:3], "pickle-protocol": pickle.HIGHEST_PROTOCOL}


def _smuggles(obj: Any, depth: int = 0) -> bool:
    """Does a decoded message ask its reader for pickle (distributed's out-of-band markers)?"""
    if depth > 64:
        return True
    if isinstance(obj, dict):
        return bool(_MARKERS & set(obj)) or any(_smuggles(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_smuggles(v, depth + 1) for v in obj)
    return False


_MARKERS = {"__Pickled__", "__Serialized__"}


def _ask_identity(sock: socket.socket, deadline: float) -> dict[str, Any]:
    _write_message(sock, _handshake())
    hello, frames = _read_message(sock, deadline)
    if not isinstance(hello, dict) or "pickle-protocol" not in hello:
        raise _NotScheduler("it does not speak the Dask comm protocol (no handshake)")
    if frames > 1 or _smuggles(hello):  # a scheduler's handshake is plain data (comm/core.py handshake_info)
        raise _NotScheduler("its handshake carries pickled or serialized objects, which a Dask scheduler never sends")
    _write_message(sock, {"op": "identity", "reply": True})
    ident, _ = _read_message(sock, deadline)
    if not isinstance(ident, dict):
        raise _NotScheduler("its identity reply is not a mapping")
    if ident.get("type") != "Scheduler":
        what = ident.get("type") if isinstance(ident.get("type"), str) else None
        raise _NotScheduler(f"it is a Dask {shown(what, 40)}" if what else "its identity reply names no type")
    return ident


def probe_scheduler(address: str, timeout: float = 5.0, security: Any = None) -> dict[str, Any]:
    """Ask the peer at ``address`` who it is, decoding its replies with msgpack only.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` or ``tls://HOST:PORT``.
    timeout : float
        Seconds for the whole exchange (connect, handshake, identity).
    security : distributed.security.Security, optional
        Certificates of a ``tls://`` scheduler (its client role is used).

    Returns
    -------
    dict
        The scheduler's identity (``type`` ``"Scheduler"``, ``id``, ``address``, ...); nested
        values that the scheduler sent pickled are left as inert mappings.

    Raises
    ------
    SpecError
        A malformed address, no listener, a failed TLS handshake, or a peer that does not
        answer as a Dask scheduler within ``timeout`` (one line, source ``argument --scheduler``).
    """
    scheme, host, port = check_address(address)
    ctx: ssl.SSLContext | None = None
    if scheme == "tls":
        ctx = security.get_connection_args("client").get("ssl_context") if security is not None else None
        if ctx is None:
            raise SpecError(f"{shown(address)} is a tls:// address: give --tls-ca-file and --tls-cert (and "
                            "--tls-key unless the certificate file holds the key)", source=_SOURCE)
    deadline = time.monotonic() + timeout
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name the IDNA codec refuses
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise SpecError(f"cannot reach the Dask scheduler at {shown(address)} ({why})", source=_SOURCE) from None
    sock = raw
    try:
        if ctx is not None:
            try:
                sock = ctx.wrap_socket(raw, server_hostname=host)
            except (OSError, ValueError) as exc:
                raise SpecError(f"TLS handshake with {shown(address)} failed "
                                f"({getattr(exc, 'reason', None) or type(exc).__name__})", source=_SOURCE) from None
        try:
            return _ask_identity(sock, deadline)
        except _NotScheduler as exc:
            raise SpecError(f"{shown(address)} is not a Dask scheduler: {exc}", source=_SOURCE) from None
        except (socket.timeout, TimeoutError):
            raise SpecError(f"{shown(address)} is not a Dask scheduler: no answer to the Dask handshake within "
                            f"{timeout:g} s", source=_SOURCE) from None
        except OSError as exc:
            raise SpecError(f"{shown(address)} is not a Dask scheduler: the connection failed "
                            f"({exc.strerror or type(exc).__name__})", source=_SOURCE) from None
    finally:
        for s in {id(sock): sock, id(raw): raw}.values():
            try:
                s.close()
            except OSError:  # pragma: no cover - closing a broken socket
                pass
