"""``oassim sweep --scheduler``: hostile, broken and silent peers, bad addresses, and TLS.

The fake peers are loopback servers (127.0.0.1, port 0) in a thread that serve a few
connections and stop by themselves. Their messages are built here from distributed's wire
format (an 8-byte length, a frame count, the frame lengths, the frames; frame 0 msgpack, a
``{"__Pickled__": i}`` mapping pointing at a pickled sub-frame), not with the code under test.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Iterator

import msgpack
import pytest
import yaml

from oassim.cli import main
from oassim.errors import SpecError
from tests.experiments.conftest import SWEEP_BASE

distributed = pytest.importorskip("distributed")

SWEEP = {"name": "t", "base": SWEEP_BASE, "axes": {"parallelism.tp": [1, 2]},
         "derived": {"parallelism.dp": "accelerators // (tp * pp)"}}


def write_sweep(tmp_path: Path) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    return p


class MakeDir:
    """Unpickling this object creates the folder ``path`` (the stand-in for arbitrary code)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def message(*frames: bytes) -> bytes:
    """A distributed comm message of these frames (comm/tcp.py framing)."""
    body = struct.pack(f"Q{len(frames)}Q", len(frames), *map(len, frames)) + b"".join(frames)
    return struct.pack("Q", len(body)) + body


def handshake(**extra) -> bytes:
    return message(msgpack.packb({"compression": None, "python": [3, 11, 0], "pickle-protocol": 5, **extra}))


def pickled_handshake(marker: Path) -> bytes:
    """A handshake whose ``compression`` value is a pickled object that creates ``marker``."""
    head = msgpack.packb({"compression": {"__Pickled__": 1}, "python": [3, 11, 0], "pickle-protocol": 5})
    sub = msgpack.packb({"pickled-obj": pickle.dumps(MakeDir(str(marker))), "num-sub-frames": 0})
    return message(head, sub)


@contextlib.contextmanager
def fake_peer(replies: list[bytes], hold_s: float = 8.0) -> Iterator[str]:
    """A loopback server that sends ``replies`` in turn (each after reading from the client)
    on every connection, for at most ``hold_s`` seconds; yields its tcp:// address."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()
    deadline = time.monotonic() + hold_s

    def serve() -> None:
        served = 0
        while not stop.is_set() and time.monotonic() < deadline and served < 8:
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            served += 1
            with conn:
                conn.settimeout(0.5)
                try:
                    for r in replies:
                        conn.sendall(r)
                        conn.recv(1 << 16)
                    while not stop.is_set() and time.monotonic() < deadline:  # hold: read until closed
                        try:
                            if not conn.recv(1 << 16):
                                break
                        except socket.timeout:
                            continue
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(hold_s + 2)
        srv.close()


def sweep_error(tmp_path: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run oassim sweep with ``args``: assert exit 2, one stderr line, no traceback, no store; return the line."""
    out = tmp_path / "store"
    assert main(["sweep", str(write_sweep(tmp_path)), "--out", str(out), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


def test_pickled_handshake_is_never_unpickled(tmp_path, capsys):
    """A peer answering the handshake with a pickled payload: the payload never runs, exit 2, one line
    naming --scheduler and saying the peer is not a Dask scheduler."""
    marker = tmp_path / "payload-ran"
    with fake_peer([pickled_handshake(marker)]) as addr:
        err = sweep_error(tmp_path, capsys, "--scheduler", addr)
    assert not marker.exists()
    assert err.startswith("oassim: error: argument --scheduler: ") and "is not a Dask scheduler" in err, err


@pytest.mark.parametrize("reply, words", [
    ([b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"], "not a Dask comm frame"),
    ([message(b"\xc1\xc1\xc1")], "not msgpack"),
    ([message(msgpack.packb("hello"))], "no handshake"),
    ([handshake(), message(msgpack.packb({"type": "Worker", "id": "w"}))], "it is a Dask Worker"),
], ids=["http", "bad-msgpack", "not-dask", "a-worker"])
def test_peers_that_are_no_scheduler_are_one_line_errors(tmp_path, capsys, reply, words):
    """An HTTP server, garbage frames, a non-Dask message or a Dask worker: exit 2, one line saying why."""
    with fake_peer(reply) as addr:
        err = sweep_error(tmp_path, capsys, "--scheduler", addr)
    assert "argument --scheduler: " in err and "is not a Dask scheduler" in err and words in err, err


def test_silent_peer_times_out_in_one_line():
    """A peer that accepts and never answers: a SpecError about --scheduler within the timeout, not a hang."""
    from oassim.experiments.executors import DaskExecutor

    with fake_peer([], hold_s=6.0) as addr:
        with pytest.raises(SpecError) as exc:
            DaskExecutor(addr, timeout=1.0)
    msg = str(exc.value)
    assert msg.startswith("argument --scheduler: ") and "no answer to the Dask handshake within 1 s" in msg, msg


@pytest.mark.parametrize("address, words", [
    ("tcp://" + "a" * 300 + ":8786", "is not a valid host name"),
    ("tcp://" + ".".join(["b" * 60] * 5) + ":8786", "is not a valid host name"),
    ("tcp://127.0.0.1:99999", "not in 1..65535"),
    ("inproc://192.168.1.1/1234/1", "inproc://"),
    ("ucx://127.0.0.1:8786", "ucx://"),
], ids=["300-char-host", "254-char-name", "bad-port", "inproc", "ucx"])
def test_bad_addresses_are_one_line_errors(tmp_path, capsys, address, words):
    """A 300-character host, an over-long name, a bad port or a non-tcp/tls scheme: one line, exit 2."""
    err = sweep_error(tmp_path, capsys, "--scheduler", address)
    assert err.startswith("oassim: error: argument --scheduler: not a scheduler address") and words in err, err
    assert len(err) < 400


def test_inproc_scheduler_leaves_no_client_or_thread(tmp_path, capsys):
    """--scheduler inproc://...: refused without creating a distributed Client or leaving a thread behind."""
    from distributed.client import Client

    before = {t.ident for t in threading.enumerate()}
    clients = set(getattr(Client, "_instances", set()))  # other tests' clients may still be alive
    sweep_error(tmp_path, capsys, "--scheduler", "inproc://10.0.0.1/1/1")
    assert set(getattr(Client, "_instances", set())) <= clients
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before


def test_tls_without_certificates_and_certificates_without_tls(tmp_path, capsys):
    """tls:// without --tls-ca-file/--tls-cert, or --tls-cert with tcp://: one-line errors naming the option."""
    err = sweep_error(tmp_path, capsys, "--scheduler", "tls://127.0.0.1:8786")
    assert err.startswith("oassim: error: argument --tls-ca-file: TLS needs --tls-ca-file"), err
    err = sweep_error(tmp_path, capsys, "--scheduler", "tcp://127.0.0.1:8786", "--tls-cert", "c.pem")
    assert err.startswith("oassim: error: argument --tls-cert: is for a tls:// scheduler"), err
    missing = str(tmp_path / "none.pem")
    err = sweep_error(tmp_path, capsys, "--scheduler", "tls://127.0.0.1:8786", "--tls-ca-file", missing,
                      "--tls-cert", missing)
    assert err.startswith("oassim: error: argument --tls-ca-file: cannot read"), err


def self_signed(folder: Path) -> tuple[str, str]:
    """A self-signed certificate (its own CA) and key for 127.0.0.1, as PEM files: (cert, key)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oassim-test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = folder / "cert.pem", folder / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(cert_pem), str(key_pem)


def test_sweep_over_tls_round_trips(tmp_path, capsys):
    """A real tls:// LocalCluster with a CA made here: the sweep stores both points; a plain tcp:// probe of
    the same port is refused, and so is a client whose CA did not sign the scheduler's certificate."""
    from distributed.security import Security

    from oassim.experiments import load_results

    cert, key = self_signed(tmp_path)
    sec = Security(tls_ca_file=cert, tls_scheduler_cert=cert, tls_scheduler_key=key, tls_worker_cert=cert,
                   tls_worker_key=key, tls_client_cert=cert, tls_client_key=key, require_encryption=True)
    other = tmp_path / "other"
    other.mkdir()
    other_cert, other_key = self_signed(other)
    f = write_sweep(tmp_path)
    out = tmp_path / "store"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                                  host="127.0.0.1", security=sec, dashboard_address=None) as cluster:
        addr = cluster.scheduler_address
        assert addr.startswith("tls://")
        assert main(["sweep", str(f), "--out", str(out), "-q", "--scheduler", addr, "--tls-ca-file", cert,
                     "--tls-cert", cert, "--tls-key", key]) == 0
        capsys.readouterr()
        plain = sweep_error(other, capsys, "--scheduler", "tcp://" + addr.split("://", 1)[1])
        untrusted = sweep_error(other, capsys, "--scheduler", addr, "--tls-ca-file", other_cert,
                                "--tls-cert", other_cert, "--tls-key", other_key)
    frame = load_results(out)
    assert len(frame) == 2 and set(frame["status"]) <= {"ok", "error"}
    assert "argument --scheduler: " in plain and "is not a Dask scheduler" in plain, plain
    assert "argument --scheduler: TLS handshake with" in untrusted, untrusted
