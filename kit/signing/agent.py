"""Signing through a running ssh-agent (OpenSSH PROTOCOL.agent, draft-miller-ssh-agent).

A small client of the two requests signing needs: list the agent's keys
(SSH_AGENTC_REQUEST_IDENTITIES -> SSH_AGENT_IDENTITIES_ANSWER) and sign with one
(SSH_AGENTC_SIGN_REQUEST -> SSH_AGENT_SIGN_RESPONSE or SSH_AGENT_FAILURE). The agent signs
SSHSIG's signed data, so ``sshsig.sign_with`` frames file keys and agent keys alike. Every
reply is read with a bounded length and a timeout; every problem is a KEY_ERROR naming it.

Messages are ``uint32 length, byte type, contents`` (the SSH wire format, ``kit.signing.wire``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import ExitCode, KitError
from kit.signing.allowed_signers import load_public_key
from kit.signing.wire import Reader, blob_type, fingerprint, pack_string, public_blob

SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_EXTENSION_FAILURE = 28
SSH2_AGENT_FAILURE = 30  # a legacy failure code some agents still send
FAILURES = (SSH_AGENT_FAILURE, SSH_AGENT_EXTENSION_FAILURE, SSH2_AGENT_FAILURE)
SSH_AGENT_RSA_SHA2_512 = 4  # sign flag: an RSA key signs as rsa-sha2-512

MAX_MESSAGE = 256 * 1024  # OpenSSH's own agent caps messages at 256 KiB (AGENT_MAX_LEN)
TIMEOUT_S = 30.0
AUTH_SOCK = "SSH_AUTH_SOCK"


class AgentError(KitError):
    """ssh-agent cannot be reached, misbehaves, lacks the key, or refuses to sign."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.KEY_ERROR)


def frame(msg_type: int, payload: bytes = b"") -> bytes:
    """One agent message: uint32 length, the type byte, the contents."""
    return (len(payload) + 1).to_bytes(4, "big") + bytes([msg_type]) + payload


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            raise AgentError("ssh-agent closed the connection in the middle of a reply")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> tuple[int, bytes]:
    """The next message from the agent as ``(type, contents)``; at most MAX_MESSAGE bytes.

    A timeout of the socket propagates as ``TimeoutError`` (the caller words it).
    """
    length = int.from_bytes(_recv_exactly(sock, 4), "big")
    if length == 0 or length > MAX_MESSAGE:
        raise AgentError(f"ssh-agent sent a reply of {length} bytes (expected 1 to {MAX_MESSAGE})")
    body = _recv_exactly(sock, length)
    return body[0], body[1:]


@dataclass(frozen=True)
class Identity:
    """One key the agent holds: its public key blob and comment."""

    key_blob: bytes
    comment: str


def parse_identities(msg_type: int, payload: bytes) -> list[Identity]:
    """The keys in an SSH_AGENT_IDENTITIES_ANSWER; AgentError for anything else."""
    if msg_type in FAILURES:
        raise AgentError("ssh-agent refused to list its keys (is it locked? try ssh-add -X)")
    if msg_type != SSH_AGENT_IDENTITIES_ANSWER:
        raise AgentError(f"ssh-agent answered a key list request with message type {msg_type}")
    try:
        r = Reader(payload)
        count = r.uint32()
        if count > len(payload) // 8:  # each key takes at least two empty strings
            raise ValueError(f"{count} keys announced in {len(payload)} bytes")
        keys = []
        for _ in range(count):
            blob = r.string()
            comment = r.string().decode("utf-8", "replace")
            keys.append(Identity(blob, comment))
        r.end()
    except ValueError as e:
        raise AgentError(f"ssh-agent sent a malformed key list: {e}") from None
    return keys


def parse_sign_response(msg_type: int, payload: bytes, what: str) -> bytes:
    """The signature blob in an SSH_AGENT_SIGN_RESPONSE; AgentError for a refusal or junk."""
    if msg_type in FAILURES:
        raise AgentError(
            f"ssh-agent refused to sign with {what} (a key added with ssh-add -c needs "
            "confirmation, which was denied or had no askpass program to ask with)"
        )
    if msg_type != SSH_AGENT_SIGN_RESPONSE:
        raise AgentError(f"ssh-agent answered a sign request with message type {msg_type}")
    try:
        r = Reader(payload)
        sig = r.string()
        r.end()
    except ValueError as e:
        raise AgentError(f"ssh-agent sent a malformed signature reply: {e}") from None
    return sig


class AgentClient:
    """A connection to ssh-agent; one request at a time, each reply bounded and timed."""

    def __init__(self, sock: socket.socket, timeout: float = TIMEOUT_S) -> None:
        self.sock, self.timeout = sock, timeout
        sock.settimeout(timeout)

    @classmethod
    def connect(cls, path: str | None = None, timeout: float = TIMEOUT_S) -> AgentClient:
        """Connect to the agent at ``path`` (default: $SSH_AUTH_SOCK)."""
        path = path if path is not None else os.environ.get(AUTH_SOCK, "")
        if not path:
            raise AgentError(
                f"no ssh-agent: {AUTH_SOCK} is not set (start one with eval $(ssh-agent), "
                "then ssh-add the key)"
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            reason = e.strerror or str(e) or type(e).__name__
            raise AgentError(f"no ssh-agent at {AUTH_SOCK}={path}: {reason}") from None
        return cls(sock, timeout)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, message: bytes, waiting: str) -> tuple[int, bytes]:
        try:
            self.sock.sendall(message)
            return read_message(self.sock)
        except TimeoutError:
            raise AgentError(
                f"ssh-agent did not answer within {self.timeout:g} s {waiting}"
            ) from None
        except OSError as e:
            raise AgentError(f"lost the connection to ssh-agent: {e.strerror or e}") from None

    def identities(self) -> list[Identity]:
        """The keys the agent holds."""
        reply = self._request(frame(SSH_AGENTC_REQUEST_IDENTITIES), "listing its keys")
        return parse_identities(*reply)

    def sign(self, key_blob: bytes, data: bytes, flags: int = 0) -> bytes:
        """The agent's signature blob of ``data`` by ``key_blob``."""
        request = frame(
            SSH_AGENTC_SIGN_REQUEST,
            pack_string(key_blob) + pack_string(data) + flags.to_bytes(4, "big"),
        )
        waiting = "to a sign request (a hardware key may be waiting for a touch or a PIN)"
        return parse_sign_response(*self._request(request, waiting), fingerprint(key_blob))


@dataclass(frozen=True)
class AgentSigner:
    """Signs with the key of a ``.pub`` file, held by ssh-agent (a ``sshsig.Signer``).

    Each signature opens its own connection, so a long run does not hold the agent open.
    """

    public_key_blob: bytes
    socket_path: str
    timeout: float = field(default=TIMEOUT_S, compare=False)

    def sign(self, message: bytes) -> bytes:
        """The agent's signature blob of ``message`` (RSA keys as rsa-sha2-512)."""
        flags = SSH_AGENT_RSA_SHA2_512 if blob_type(self.public_key_blob) == "ssh-rsa" else 0
        with AgentClient.connect(self.socket_path, self.timeout) as client:
            return client.sign(self.public_key_blob, message, flags)


def agent_signer(pub_path: Path, socket_path: str | None = None) -> AgentSigner:
    """The agent's signer for the key in ``pub_path``, checked now to be in the agent.

    AgentError (KEY_ERROR) when there is no agent, or the agent does not hold the key; a
    malformed or unsupported ``.pub`` is a KEY_ERROR too.
    """
    pub_path = Path(pub_path)
    try:
        key_blob = public_blob(load_public_key(pub_path))
    except KitError as e:
        raise KitError(e.message, ExitCode.KEY_ERROR) from None
    path = socket_path if socket_path is not None else os.environ.get(AUTH_SOCK, "")
    with AgentClient.connect(path) as client:
        held = {identity.key_blob for identity in client.identities()}
    if key_blob not in held:
        private = pub_path.with_suffix("") if pub_path.suffix == ".pub" else "KEYFILE"
        raise AgentError(
            f"key {fingerprint(key_blob)} ({pub_path}) is not in ssh-agent: "
            f"add it with ssh-add {private}"
        )
    return AgentSigner(key_blob, path)
