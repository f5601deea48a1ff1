"""The point of common coupling: the grid breaker, its protections and its sync-check relay.

Three things open the breaker: the controller (planned islanding), the fast loss-of-grid detection
of the static transfer switch (when the grid voltage stays below ``loss_of_grid_pu`` for
``detection_s``), and the IEEE 1547-2018 interconnection trip settings (Category III defaults,
reference/domain.md §1.3 and §6), each a pickup level and a clearing time.

Closing goes through a sync-check relay: an armed close request waits until voltage, frequency and
phase differences are all inside the window, then closes. A controller may bypass the relay; an
out-of-phase close then happens, and the plant makes it hurt the way it does on a real bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.sim.grid import GridState

TIMER_TOLERANCE_S = 1e-9
"""Sub-step durations are summed in floating point; a timer this close to its limit has reached it."""


@dataclass(frozen=True)
class TripSetting:
    name: str
    pickup: float
    clearing_s: float
    over: bool
    """True: trips above ``pickup``; False: trips below it."""


CATEGORY_III_TRIPS: tuple[TripSetting, ...] = (
    TripSetting("OV2", 1.20, 0.16, over=True),
    TripSetting("OV1", 1.10, 2.0, over=True),
    TripSetting("UV1", 0.88, 21.0, over=False),
    TripSetting("UV2", 0.50, 2.0, over=False),
)
CATEGORY_III_FREQUENCY_TRIPS: tuple[TripSetting, ...] = (
    TripSetting("OF2", 62.0, 0.16, over=True),
    TripSetting("OF1", 61.2, 300.0, over=True),
    TripSetting("UF1", 58.5, 300.0, over=False),
    TripSetting("UF2", 56.5, 0.16, over=False),
)


@dataclass(frozen=True)
class PccSettings:
    voltage_trips: tuple[TripSetting, ...] = CATEGORY_III_TRIPS
    frequency_trips: tuple[TripSetting, ...] = CATEGORY_III_FREQUENCY_TRIPS
    loss_of_grid_pu: float = 0.7
    """Below this the racks ride through only on PSU hold-up (ITIC allows 20 ms under 0.7 pu), so the
    static switch islands rather than let them ride a deep sag behind a closed breaker."""
    detection_s: float = 0.008
    transfer_s: float = 0.004
    momentary_cessation_pu: float = 0.5
    sync_dv_pu: float = 0.05
    sync_df_hz: float = 0.1
    sync_dtheta_deg: float = 10.0


@dataclass(frozen=True)
class SyncCheck:
    """Differences across the open breaker: bus minus grid."""

    dv_pu: float
    df_hz: float
    dtheta_deg: float

    def within(self, settings: PccSettings) -> bool:
        return (
            abs(self.dv_pu) <= settings.sync_dv_pu
            and abs(self.df_hz) <= settings.sync_df_hz
            and abs(self.dtheta_deg) <= settings.sync_dtheta_deg
        )


@dataclass(frozen=True)
class BreakerClose:
    """What the breaker closed into: the evidence a resync criterion judges."""

    t: float
    sync: SyncCheck
    sync_checked: bool
    in_window: bool
    dead_bus: bool


def wrap_degrees(angle: float) -> float:
    """Angle folded into (-180, 180]."""
    folded = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if folded == -180.0 else folded


@dataclass
class Pcc:
    settings: PccSettings = field(default_factory=PccSettings)
    closed: bool = True
    auto_island_enabled: bool = True
    open_requested: bool = False
    close_requested: bool = False
    close_sync_check: bool = True
    last_open_reason: str = ""
    closes: list[BreakerClose] = field(default_factory=list)
    _trip_timers: dict[str, float] = field(default_factory=dict, repr=False)
    _loss_timer_s: float = field(default=0.0, repr=False)
    _timing: bool = field(default=False, repr=False)
    _quiet_band: tuple[float, float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Precompute the band inside which no protection timer can run (the fast path)."""
        settings = self.settings
        voltage, frequency = settings.voltage_trips, settings.frequency_trips
        self._quiet_band = (
            max([settings.loss_of_grid_pu] + [t.pickup for t in voltage if not t.over]),
            min(t.pickup for t in voltage if t.over),
            max(t.pickup for t in frequency if not t.over),
            min(t.pickup for t in frequency if t.over),
        )

    def request_open(self) -> None:
        self.open_requested = True
        self.close_requested = False

    def request_close(self, sync_check: bool = True) -> None:
        self.close_requested = True
        self.close_sync_check = sync_check
        self.open_requested = False

    def cancel_close(self) -> None:
        self.close_requested = False

    def protection_trip(self, dt: float, grid: GridState) -> str:
        """Why the breaker must open at the start of this sub-step, or "" to stay closed.

        Each timer holds how long its condition has lasted up to now; a condition that holds now
        is charged for the coming ``dt`` after the check, so a trip lands on the first sub-step
        boundary at or after its clearing time.
        """
        voltage = grid.voltage_pu if grid.available else 0.0
        low_v, high_v, low_f, high_f = self._quiet_band
        if low_v <= voltage <= high_v and low_f <= grid.frequency_hz <= high_f and not self._timing:
            return ""
        self._timing = True
        lost = voltage < self.settings.loss_of_grid_pu
        if not lost:
            self._loss_timer_s = 0.0
        elif self.auto_island_enabled and self._loss_timer_s >= self.settings.detection_s - TIMER_TOLERANCE_S:
            return "loss of grid"
        reason = self._advance(self.settings.voltage_trips, voltage, dt)
        frequency_reason = self._advance(self.settings.frequency_trips, grid.frequency_hz, dt)
        if lost:
            self._loss_timer_s += dt
        self._timing = lost or any(self._trip_timers.values())
        return reason or (frequency_reason if grid.available else "")

    def _advance(self, trips: tuple[TripSetting, ...], value: float, dt: float) -> str:
        reason = ""
        timers = self._trip_timers
        for trip in trips:
            if not (value > trip.pickup if trip.over else value < trip.pickup):
                timers[trip.name] = 0.0
                continue
            elapsed = timers.get(trip.name, 0.0)
            if elapsed >= trip.clearing_s - TIMER_TOLERANCE_S and not reason:
                reason = f"IEEE 1547 {trip.name} trip"
            timers[trip.name] = elapsed + dt
        return reason

    def opened(self, reason: str) -> None:
        self.closed = False
        self.open_requested = False
        self.last_open_reason = reason
        self._trip_timers.clear()
        self._loss_timer_s = 0.0
        self._timing = False

    def record_close(self, t: float, sync: SyncCheck, dead_bus: bool) -> BreakerClose:
        record = BreakerClose(
            t=t,
            sync=sync,
            sync_checked=self.close_sync_check,
            in_window=dead_bus or sync.within(self.settings),
            dead_bus=dead_bus,
        )
        self.closes.append(record)
        self.closed = True
        self.close_requested = False
        return record
