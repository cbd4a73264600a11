"""The control socket against its own faults: a server that cannot serve leaves the tree
alone, its records carry the structured fields, failed actions name the fix, and the
peer's uid is read from the right field of each platform's credentials struct."""

from __future__ import annotations

import logging
import os
import socket
import struct
from typing import TYPE_CHECKING

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from super_visor._control import (
    PEER_CREDENTIALS,
    ControlServer,
    PeerCredentials,
    peer_credentials,
)
from super_visor._control_protocol import answer

from .log_fields import sv_fields
from .test_control_socket_server import request, serving, small_tree, sock_path

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("sock_path",)  # the fixture, used here by name

UID, GID, PID = 1000, 50, 4242


@pytest.mark.parametrize(
    ("platform", "fields"),
    [
        ("linux", (PID, UID, GID)),  # struct ucred
        ("openbsd7", (UID, GID, PID)),  # struct sockpeercred
        ("netbsd10", (PID, UID, GID)),  # struct unpcbid (LOCAL_PEEREID)
    ],
)
def test_the_uid_is_read_from_its_own_field_of_each_struct(
    platform: str, fields: tuple[int, int, int]
) -> None:
    credentials = peer_credentials(platform)
    assert credentials is not None
    assert credentials.uid_from(struct.pack("3i", *fields)) == UID


@pytest.mark.parametrize("platform", ["darwin", "freebsd14", "dragonfly6"])
def test_xucred_platforms_read_local_peercred(platform: str) -> None:
    credentials = peer_credentials(platform)
    assert credentials is not None
    assert (credentials.level, credentials.option) == (0, 1)  # SOL_LOCAL, LOCAL_PEERCRED
    xucred = struct.pack("2IH", 0, UID, 1).ljust(credentials.size, b"\0")  # version, uid, ...
    assert credentials.uid_from(xucred) == UID


def test_openbsd_and_netbsd_are_not_sent_to_local_peercred() -> None:
    openbsd, netbsd = peer_credentials("openbsd7"), peer_credentials("netbsd10")
    assert openbsd == PeerCredentials(0xFFFF, 0x1022, 12, "IIi", 0)  # SO_PEERCRED
    assert netbsd == PeerCredentials(0, 3, 12, "iII", 1)  # LOCAL_PEEREID


@pytest.mark.parametrize("platform", ["sunos5", "win32", "aix7", "cygwin"])
def test_a_platform_without_a_way_is_none(platform: str) -> None:
    assert peer_credentials(platform) is None


def test_the_table_is_what_the_running_linux_offers() -> None:
    credentials = dict(PEER_CREDENTIALS)["linux"]
    assert (credentials.level, credentials.option) == (socket.SOL_SOCKET, socket.SO_PEERCRED)


async def test_a_server_that_cannot_serve_logs_once_and_the_tree_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    broken.close()  # every operation on it fails: EBADF
    async with small_tree().running() as handle:
        with anyio.fail_after(10):
            await ControlServer(handle).serve(broken)  # returns: never raises
        assert handle.is_running("pipeline/consumer")
        assert not handle.stopped
    [record] = [r for r in caplog.records if "no longer answers" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert sv_fields(record) == ("app", None)


async def test_a_refused_client_is_logged_with_the_tree_path(
    sock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        serving(small_tree(), sock_path, uid=os.geteuid() + 1),
        await anyio.connect_unix(sock_path) as client,
    ):
        reply = await request(client, BufferedByteReceiveStream(client), b'{"cmd": "status"}\n')
        assert reply["ok"] is False
    [record] = [r for r in caplog.records if "client refused" in r.getMessage()]
    assert sv_fields(record) == ("app", None)


async def test_a_failed_action_names_the_proc_and_the_fix() -> None:
    async with small_tree().running() as handle:
        reply = await answer(handle, b'{"cmd": "start", "path": "db"}')  # it runs already
    assert reply is not None
    assert reply["ok"] is False
    error = str(reply["error"])
    assert error.startswith("start db failed: RuntimeError: ")
    assert "super-visor ctl SOCK status" in error


async def test_an_unknown_path_is_refused_before_any_action() -> None:
    async with small_tree().running() as handle:
        reply = await answer(handle, b'{"cmd": "stop", "path": "pipeline/nope"}')
        assert reply is not None
        assert reply["ok"] is False
        assert "no proc 'pipeline/nope'" in str(reply["error"])
        assert handle.is_running("pipeline/consumer")
