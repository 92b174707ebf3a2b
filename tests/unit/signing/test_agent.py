"""The ssh-agent client against crafted replies on a real socket pair (no agent needed)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from kit.errors import ExitCode
from kit.signing import agent
from kit.signing.agent import AgentClient, AgentError, frame
from kit.signing.wire import pack_string

KEY = pack_string("ssh-ed25519") + pack_string(bytes(32))
SIG = pack_string("ssh-ed25519") + pack_string(bytes(64))


@pytest.fixture
def pair() -> Iterator[tuple[AgentClient, socket.socket]]:
    """A client on one end of a socket pair; the test plays the agent on the other."""
    ours, theirs = socket.socketpair()
    client = AgentClient(ours, timeout=0.5)
    yield client, theirs
    client.close()
    theirs.close()


def answer(peer: socket.socket, raw: bytes) -> None:
    peer.sendall(raw)


def identities(*keys: tuple[bytes, str]) -> bytes:
    body = len(keys).to_bytes(4, "big")
    body += b"".join(pack_string(blob) + pack_string(comment) for blob, comment in keys)
    return frame(agent.SSH_AGENT_IDENTITIES_ANSWER, body)


def refused(pair, raw: bytes, *, sign: bool = False) -> str:
    client, peer = pair
    answer(peer, raw)
    with pytest.raises(AgentError) as e:
        client.sign(KEY, b"data") if sign else client.identities()
    assert e.value.code == ExitCode.KEY_ERROR
    assert "\n" not in e.value.message
    return e.value.message


def test_identities_are_parsed_and_the_request_is_well_formed(pair) -> None:
    client, peer = pair
    answer(peer, identities((KEY, "alice"), (b"other", "bob")))
    assert [(i.key_blob, i.comment) for i in client.identities()] == [
        (KEY, "alice"),
        (b"other", "bob"),
    ]
    assert peer.recv(100) == b"\0\0\0\x01\x0b"  # length 1, SSH_AGENTC_REQUEST_IDENTITIES


def test_sign_request_carries_key_data_and_flags(pair) -> None:
    client, peer = pair
    answer(peer, frame(agent.SSH_AGENT_SIGN_RESPONSE, pack_string(SIG)))
    assert client.sign(KEY, b"data", agent.SSH_AGENT_RSA_SHA2_512) == SIG
    body = pack_string(KEY) + pack_string(b"data") + (4).to_bytes(4, "big")
    assert peer.recv(1000) == (len(body) + 1).to_bytes(4, "big") + b"\x0d" + body


@pytest.mark.parametrize("code", [agent.SSH_AGENT_FAILURE, agent.SSH2_AGENT_FAILURE])
def test_sign_failure_is_a_refusal(pair, code: int) -> None:
    message = refused(pair, frame(code), sign=True)
    assert message.startswith("ssh-agent refused to sign with SHA256:")
    assert "ssh-add -c" in message


def test_sign_answered_with_the_wrong_type(pair) -> None:
    message = refused(pair, identities(), sign=True)
    assert message == "ssh-agent answered a sign request with message type 12"


def test_identities_answered_with_the_wrong_type(pair) -> None:
    message = refused(pair, frame(agent.SSH_AGENT_SIGN_RESPONSE, pack_string(SIG)))
    assert message == "ssh-agent answered a key list request with message type 14"


def test_identities_refused(pair) -> None:
    assert refused(pair, frame(agent.SSH_AGENT_FAILURE)).startswith("ssh-agent refused to list")


@pytest.mark.parametrize(
    "body",
    [
        (1).to_bytes(4, "big") + pack_string(KEY),  # comment missing
        (1).to_bytes(4, "big") + pack_string(KEY) + pack_string("c") + b"x",  # trailing byte
        (10**6).to_bytes(4, "big") + pack_string(KEY) + pack_string("c"),  # count beyond size
        b"\0\0",  # count truncated
        (1).to_bytes(4, "big") + (2**31).to_bytes(4, "big") + b"x",  # string longer than reply
    ],
)
def test_malformed_key_lists(pair, body: bytes) -> None:
    message = refused(pair, frame(agent.SSH_AGENT_IDENTITIES_ANSWER, body))
    assert message.startswith("ssh-agent sent a malformed key list: ")


@pytest.mark.parametrize(
    "body", [b"", pack_string(SIG) + b"x", pack_string(SIG)[:-1], (2**32 - 1).to_bytes(4, "big")]
)
def test_malformed_sign_replies(pair, body: bytes) -> None:
    message = refused(pair, frame(agent.SSH_AGENT_SIGN_RESPONSE, body), sign=True)
    assert message.startswith("ssh-agent sent a malformed signature reply: ")


@pytest.mark.parametrize("length", [0, agent.MAX_MESSAGE + 1, 2**32 - 1])
def test_length_prefix_is_bounded(pair, length: int) -> None:
    message = refused(pair, length.to_bytes(4, "big") + b"\x0c")
    assert message == f"ssh-agent sent a reply of {length} bytes (expected 1 to 262144)"


def test_largest_reply_is_read_whole(pair) -> None:
    client, peer = pair
    blob = b"k" * (agent.MAX_MESSAGE - 1 - 4 - 4 - 4)
    raw = identities((blob, ""))
    assert len(raw) == 4 + agent.MAX_MESSAGE

    sender = threading.Thread(target=answer, args=(peer, raw))
    sender.start()
    assert client.identities()[0].key_blob == blob
    sender.join()


def test_reply_cut_short_then_closed(pair) -> None:
    client, peer = pair
    answer(peer, identities((KEY, "alice"))[:-3])
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(AgentError, match="closed the connection in the middle of a reply"):
        client.identities()


def test_silent_agent_times_out_and_mentions_a_touch(pair) -> None:
    client, _peer = pair
    with pytest.raises(AgentError) as e:
        client.sign(KEY, b"data")
    assert e.value.message.startswith("ssh-agent did not answer within 0.5 s to a sign request")
    assert "touch" in e.value.message


def test_no_socket_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AgentError, match="no ssh-agent: SSH_AUTH_SOCK is not set"):
        AgentClient.connect()


def test_dead_socket(tmp_path) -> None:
    path = tmp_path / "agent.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a killed agent leaves behind
    with pytest.raises(AgentError) as e:
        AgentClient.connect(str(path))
    assert e.value.message == f"no ssh-agent at SSH_AUTH_SOCK={path}: Connection refused"
