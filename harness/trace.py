"""What a run recorded, on the run's clock: sampled channels plus the discrete things that happened.

A :class:`Trace` holds ``t`` (s, strictly increasing) and named channels of the same length, 1-D or
2-D ``(samples, packs)``; a sample holds its value until the next one (the recorder saw nothing in
between). Beside the samples: ``events`` (injected steps, plant journal lines), ``voltage_events``
(as the power analyzer logs them) and ``breaker_closes`` (what the sync-check saw at each close).

On-disk format, written by :class:`TraceWriter` and read by :meth:`Trace.load`: a directory with

- ``header.json``: format name and version, and per channel its dtype and per-sample shape. Written
  once, before any sample, through a temporary file renamed into place (never seen half-written);
- ``t.bin`` and ``ch.<name>.bin``: raw little-endian records, one per sample, appended a chunk at a
  time and flushed after every chunk;
- ``events.jsonl``, ``voltage_events.jsonl``, ``breaker_closes.jsonl``: one JSON object a line,
  flushed as each arrives.

Why not ``.npy``: its header states the array's shape, so growing one means rewriting the header, and
a crash between the data and the header leaves a file numpy refuses. Raw records need no header to
stay valid: after a crash every file holds a prefix of what was written, possibly ending in a torn
record or line; :meth:`Trace.load` keeps the samples complete in *every* file and the complete
lines. CSV would cost ten times the bytes and a parse for the 2-D per-pack channels; HDF5 would be
a new dependency. ``flush`` hands the bytes to the OS, which survives a crash of this process, not
a power cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import numpy as np
from numpy.typing import ArrayLike

from harness.sim.voltage_events import VoltageEvent, VoltageEventKind

BUS_VOLTAGE_PU = "bus_voltage_pu"
BUS_FREQUENCY_HZ = "bus_frequency_hz"
LOAD_DEMAND_W = "load_demand_w"
LOAD_SERVED_W = "load_served_w"
POWER_CAP_W = "power_cap_w"
GRID_W = "grid_w"
PCS_W = "pcs_w"
PV_W = "pv_w"
FLEET_SOC = "fleet_soc"
PACK_SOC = "pack_soc"
PACK_CURRENT_A = "pack_current_a"
PACK_ISOLATED = "pack_isolated"
PACK_FAULT = "pack_fault"
PACK_INJECTED = "pack_injected"
CONTROLLER_MODE = "controller_mode"
STANDARD_CHANNELS = (
    BUS_VOLTAGE_PU,
    BUS_FREQUENCY_HZ,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    POWER_CAP_W,
    GRID_W,
    PCS_W,
    PV_W,
    FLEET_SOC,
    PACK_SOC,
    PACK_CURRENT_A,
    PACK_ISOLATED,
    PACK_FAULT,
    PACK_INJECTED,
    CONTROLLER_MODE,
)
"""Names every recorder and criterion agree on; ``pack_*`` are 2-D (samples, packs)."""
INJECTED_UNKNOWN = -1
"""``pack_injected`` of a pack whose inserted conditions the battery emulator cannot tell (no
``FAULt:MASK?``). Every bit set, so a reader that only tests bits errs on the side of a condition."""

FORMAT_NAME = "gridhil-trace"
FORMAT_VERSION = 1
HEADER_FILE = "header.json"
TIME_FILE = "t.bin"
EVENTS_FILE = "events.jsonl"
VOLTAGE_EVENTS_FILE = "voltage_events.jsonl"
BREAKER_CLOSES_FILE = "breaker_closes.jsonl"
_DTYPES = {"float64": "<f8", "int64": "<i8", "bool": "|b1"}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


@dataclass(frozen=True)
class TraceEvent:
    """Something that happened at ``t``: an injected step, a plant journal line."""

    t: float
    source: str
    text: str


@dataclass(frozen=True)
class BreakerClose:
    """What the sync-check saw across the PCC breaker when it closed at ``t``."""

    t: float
    dv_pu: float
    df_hz: float
    dtheta_deg: float
    sync_checked: bool


def _readonly(values: ArrayLike) -> np.ndarray:
    array = np.array(values)
    array.setflags(write=False)
    return array


class Trace:
    """Samples on the run's clock plus the run's discrete records. Arrays are read-only."""

    __slots__ = ("_channels", "_t", "breaker_closes", "events", "voltage_events")

    def __init__(
        self,
        t: ArrayLike,
        channels: Mapping[str, ArrayLike],
        *,
        events: Iterable[TraceEvent] = (),
        voltage_events: Iterable[VoltageEvent] = (),
        breaker_closes: Iterable[BreakerClose] = (),
    ) -> None:
        times = _readonly(np.asarray(t, dtype=float))
        if times.ndim != 1:
            raise ValueError(f"t must be 1-D, got shape {times.shape}")
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0.0):
            raise ValueError("t must be finite and strictly increasing")
        self._t = times
        self._channels: dict[str, np.ndarray] = {}
        for name, values in channels.items():
            array = _readonly(values)
            if array.ndim not in (1, 2) or array.shape[0] != times.size:
                raise ValueError(
                    f"channel {name!r} has shape {array.shape}; expected ({times.size},) or ({times.size}, n)"
                )
            self._channels[name] = array
        self.events: tuple[TraceEvent, ...] = tuple(events)
        self.voltage_events: tuple[VoltageEvent, ...] = tuple(voltage_events)
        self.breaker_closes: tuple[BreakerClose, ...] = tuple(breaker_closes)

    @property
    def t(self) -> np.ndarray:
        return self._t

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(self._channels)

    @property
    def start_s(self) -> float:
        return float(self._t[0]) if self._t.size else float("nan")

    @property
    def end_s(self) -> float:
        return float(self._t[-1]) if self._t.size else float("nan")

    def __len__(self) -> int:
        return int(self._t.size)

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def channel(self, name: str) -> np.ndarray:
        try:
            return self._channels[name]
        except KeyError:
            known = ", ".join(sorted(self._channels)) or "none"
            raise KeyError(f"trace has no channel {name!r}; known channels: {known}") from None

    def window(self, t0: float, t1: float) -> Trace:
        """Samples with ``t0 <= t <= t1``; events and closes inside; voltage events overlapping it."""
        if not t0 <= t1:
            raise ValueError(f"window needs t0 <= t1, got ({t0}, {t1})")
        keep = (self._t >= t0) & (self._t <= t1)
        return Trace(
            self._t[keep],
            {name: values[keep] for name, values in self._channels.items()},
            events=(e for e in self.events if t0 <= e.t <= t1),
            voltage_events=(
                v for v in self.voltage_events if v.start_s <= t1 and v.start_s + v.duration_s >= t0
            ),
            breaker_closes=(b for b in self.breaker_closes if t0 <= b.t <= t1),
        )

    @classmethod
    def load(cls, directory: Path | str) -> Trace:
        """Read a :class:`TraceWriter` directory, including one whose writer died mid-run."""
        root = Path(directory)
        header = json.loads((root / HEADER_FILE).read_text())
        if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{root / HEADER_FILE}: not a {FORMAT_NAME} v{FORMAT_VERSION} header")
        specs = {name: ChannelSpec(**spec) for name, spec in header["channels"].items()}
        raw = {name: (root / _channel_file(name)).read_bytes() for name in specs}
        raw_t = (root / TIME_FILE).read_bytes()
        record = {name: spec.record_bytes for name, spec in specs.items()}
        count = min([len(raw_t) // 8, *(len(raw[name]) // record[name] for name in specs)])
        return cls(
            np.frombuffer(raw_t[: 8 * count], dtype="<f8"),
            {
                name: np.frombuffer(raw[name][: count * record[name]], dtype=_DTYPES[spec.dtype]).reshape(
                    (count, *spec.shape)
                )
                for name, spec in specs.items()
            },
            events=(TraceEvent(**row) for row in _read_jsonl(root / EVENTS_FILE)),
            voltage_events=(
                VoltageEvent(VoltageEventKind(row.pop("kind")), **row)
                for row in _read_jsonl(root / VOLTAGE_EVENTS_FILE)
            ),
            breaker_closes=(BreakerClose(**row) for row in _read_jsonl(root / BREAKER_CLOSES_FILE)),
        )


def _channel_file(name: str) -> str:
    return f"ch.{name}.bin"


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Complete lines of a JSON-lines file; a torn last line (a crash mid-write) is dropped."""
    if not path.exists():
        return
    lines = path.read_text().split("\n")
    for number, line in enumerate(lines[:-1], start=1):
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: {error}") from None


@dataclass(frozen=True)
class ChannelSpec:
    """A channel's dtype (``float64``, ``int64`` or ``bool``) and per-sample shape: ``()`` or ``(packs,)``."""

    dtype: str = "float64"
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if len(self.shape) > 1 or any(n < 1 for n in self.shape):
            raise ValueError(f"shape must be () or (n,) with n >= 1, got {self.shape}")

    @property
    def record_bytes(self) -> int:
        return int(np.dtype(_DTYPES[self.dtype]).itemsize * int(np.prod(self.shape, dtype=int)))


class TraceWriter:
    """Streams a trace to ``directory`` as samples come; see the module docstring for the format.

    Samples are buffered and written ``chunk_samples`` at a time (then flushed); discrete records
    are written and flushed at once. A crash loses at most the unwritten part of one chunk.
    """

    def __init__(
        self, directory: Path | str, channels: Mapping[str, ChannelSpec], *, chunk_samples: int = 100
    ) -> None:
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
        for name in channels:
            if not _NAME.match(name):
                raise ValueError(f"channel name {name!r} must match {_NAME.pattern}")
        self._root = Path(directory)
        self._root.mkdir(parents=True, exist_ok=True)
        if (self._root / HEADER_FILE).exists():
            raise FileExistsError(f"{self._root} already holds a trace")
        self._specs = dict(channels)
        self._chunk_samples = chunk_samples
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "channels": {name: {"dtype": s.dtype, "shape": list(s.shape)} for name, s in channels.items()},
        }
        temporary = self._root / (HEADER_FILE + ".tmp")
        temporary.write_text(json.dumps(header, indent=1))
        temporary.replace(self._root / HEADER_FILE)
        self._time_file = (self._root / TIME_FILE).open("ab")
        self._files: dict[str, IO[bytes]] = {
            name: (self._root / _channel_file(name)).open("ab") for name in channels
        }
        record_files = (EVENTS_FILE, VOLTAGE_EVENTS_FILE, BREAKER_CLOSES_FILE)
        self._records: dict[str, IO[str]] = {name: (self._root / name).open("a") for name in record_files}
        self._times: list[float] = []
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in channels}
        self._last_t = -np.inf
        self._closed = False

    def append(self, t: float, values: Mapping[str, ArrayLike]) -> None:
        """One sample of every channel at ``t`` (later than the previous sample)."""
        self._check_open()
        if not (np.isfinite(t) and t > self._last_t):
            raise ValueError(f"sample time {t} must be finite and after the previous one ({self._last_t})")
        if set(values) != set(self._specs):
            missing = sorted(set(self._specs) - set(values))
            extra = sorted(set(values) - set(self._specs))
            raise KeyError(f"sample at t={t}: missing channels {missing}, unknown channels {extra}")
        converted = {}
        for name, spec in self._specs.items():
            value = np.array(values[name], dtype=_DTYPES[spec.dtype])  # a copy: callers reuse their arrays
            if value.shape != spec.shape:
                raise ValueError(f"channel {name!r} at t={t}: shape {value.shape}, expected {spec.shape}")
            converted[name] = value
        for name, value in converted.items():
            self._pending[name].append(value)
        self._times.append(float(t))
        self._last_t = float(t)
        if len(self._times) >= self._chunk_samples:
            self.flush()

    def event(self, event: TraceEvent) -> None:
        self._write_record(EVENTS_FILE, asdict(event))

    def voltage_event(self, event: VoltageEvent) -> None:
        self._write_record(VOLTAGE_EVENTS_FILE, {**asdict(event), "kind": event.kind.value})

    def breaker_close(self, close: BreakerClose) -> None:
        self._write_record(BREAKER_CLOSES_FILE, asdict(close))

    def flush(self) -> None:
        """Write the buffered samples and hand them to the OS."""
        self._check_open()
        if not self._times:
            return
        for name, spec in self._specs.items():
            chunk = np.asarray(self._pending[name], dtype=_DTYPES[spec.dtype])
            self._files[name].write(chunk.tobytes())
            self._files[name].flush()
            self._pending[name].clear()
        self._time_file.write(np.asarray(self._times, dtype="<f8").tobytes())
        self._time_file.flush()
        self._times.clear()

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        for handle in (self._time_file, *self._files.values(), *self._records.values()):
            handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _write_record(self, file_name: str, row: dict[str, Any]) -> None:
        self._check_open()
        handle = self._records[file_name]
        handle.write(json.dumps(row) + "\n")
        handle.flush()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"trace writer for {self._root} is closed")
