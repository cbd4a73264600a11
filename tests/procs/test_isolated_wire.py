"""The wire of Isolated procs (``super_visor._isolated_wire``): frames, values and errors,
without a child process."""

from __future__ import annotations

import base64
import pickle
import sys
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from super_visor._isolated_wire import (
    MAX_FRAME,
    FrameReader,
    dump_error,
    dump_value,
    encode,
    load_error,
    load_value,
)
from super_visor.procs import IsolatedError

if TYPE_CHECKING:
    from pathlib import Path


class ChunkSource:
    """Hands out pre-cut chunks, then waits for good (a peer that went quiet)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.chunks:
            await anyio.sleep_forever()
        return self.chunks.pop(0)


async def test_frames_split_anywhere_are_read_whole() -> None:
    data = encode({"t": "ready", "value": None}) + encode({"t": "end", "n": 2})
    reader = FrameReader(ChunkSource([data[i : i + 3] for i in range(0, len(data), 3)]))
    assert await reader.receive() == {"t": "ready", "value": None}
    assert await reader.receive() == {"t": "end", "n": 2}


async def test_a_read_cancelled_mid_frame_loses_nothing() -> None:
    data = encode({"t": "end", "children": []})
    source = ChunkSource([data[:6]])
    reader = FrameReader(source)
    with anyio.move_on_after(0.05):
        await reader.receive()  # cancelled with half a frame read
    source.chunks.append(data[6:])
    assert await reader.receive() == {"t": "end", "children": []}


async def test_the_end_of_the_stream_reads_as_none() -> None:
    class Closed:
        async def receive(self, max_bytes: int = 65536) -> bytes:
            raise anyio.EndOfStream

    assert await FrameReader(Closed()).receive() is None


async def test_an_oversized_frame_is_refused() -> None:
    reader = FrameReader(ChunkSource([(MAX_FRAME + 1).to_bytes(4, "big")]))
    with pytest.raises(ValueError, match="a frame of"):
        await reader.receive()


def test_a_value_that_does_not_pickle_is_a_type_error_naming_the_path() -> None:
    with pytest.raises(TypeError, match=r"app/web: the ready value \(lock\) cannot cross"):
        dump_value(threading.Lock(), "ready value", "app/web")
    assert load_value(dump_value({"port": 8080}, "ready value", "app/web")) == {"port": 8080}


def test_an_error_of_an_imported_class_is_rebuilt_with_the_traceback_note() -> None:
    try:
        raise KeyError("missing")  # a real traceback to carry
    except KeyError as exc:
        info = dump_error(exc)
    error = load_error(info, "app/p", 123)
    assert type(error) is KeyError
    assert error.args == ("missing",)
    assert "Traceback in the isolated child (pid 123) of app/p:" in error.__notes__[0]
    assert "KeyError: 'missing'" in error.__notes__[0]


def test_rebuilding_an_error_never_imports_a_module_in_the_parent(tmp_path: Path) -> None:
    (tmp_path / "isolated_wire_probe.py").write_text(
        "class ProbeError(Exception):\n    pass\n", encoding="utf-8"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import isolated_wire_probe  # type: ignore[import-not-found]

        info = dump_error(isolated_wire_probe.ProbeError("from the child"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("isolated_wire_probe", None)
    error = load_error(info, "app/p", 1)
    assert "isolated_wire_probe" not in sys.modules
    assert isinstance(error, IsolatedError)
    assert str(error) == "app/p: the isolated child raised ProbeError: from the child"
    assert error.type_name == "isolated_wire_probe.ProbeError"


def test_a_base_exception_is_never_rebuilt() -> None:
    info = dump_error(SystemExit(3))
    assert info["pickled"] is None
    error = load_error(info, "app/p", 1)
    assert isinstance(error, IsolatedError)
    assert "SystemExit: 3" in str(error)


def test_a_pickle_of_another_class_than_announced_is_not_trusted() -> None:
    info = dump_error(ValueError("x"))
    info["pickled"] = base64.b64encode(pickle.dumps(KeyError("y"))).decode()
    assert isinstance(load_error(info, "app/p", 1), IsolatedError)


def test_isolated_error_pickles() -> None:
    error = IsolatedError("app/p", "died", type_name=None, returncode=-9)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.problem, copy.returncode) == ("app/p", "died", -9)
