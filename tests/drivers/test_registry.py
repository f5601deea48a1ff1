"""Driver names as a bench file writes them: the built-in drivers, unknown names, and a lab's own driver
registered through the ``gridhil.drivers`` entry-point group of a (temporary) installed distribution."""

from __future__ import annotations

import sys
import textwrap

import pytest

from drivers import registry
from drivers.base import Driver
from drivers.chroma_17040 import BatteryEmulator
from drivers.chroma_61800 import GridSimulator
from drivers.chroma_63200 import ElectronicLoad
from drivers.controller_link import ControllerLink
from drivers.numato_relay import RelayBox
from drivers.sunspec_meter import SunSpecMeter
from drivers.yokogawa_wt import PowerAnalyzer

BUILT_IN = {
    "chroma-17040": BatteryEmulator,
    "chroma-61800": GridSimulator,
    "chroma-63200": ElectronicLoad,
    "yokogawa-wt": PowerAnalyzer,
    "sunspec-meter": SunSpecMeter,
    "numato-relay": RelayBox,
    "gridhil-controller": ControllerLink,
}
LAB_PACKAGE = "acme_lab_drivers"
LAB_DRIVER = "acme-bms"


@pytest.fixture
def isolated_registry(monkeypatch):
    """The registry as it is now, restored after the test (a lab driver registered by it goes away)."""
    registry.driver_names()  # built-ins in
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def lab_distribution(tmp_path, monkeypatch, isolated_registry):
    """An installed distribution on sys.path whose entry points name ``driver_names`` -> its driver class."""

    def install(*driver_names: str) -> None:
        package = tmp_path / LAB_PACKAGE
        package.mkdir()
        (package / "__init__.py").write_text(
            textwrap.dedent(
                """
                from drivers.modbus import ModbusDriver


                class AcmeBms(ModbusDriver):
                    def identity(self):
                        raise NotImplementedError

                    def safe(self):
                        pass
                """
            )
        )
        info = tmp_path / "acme_lab_drivers-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-lab-drivers\nVersion: 1.0\n")
        entries = "".join(f"{name} = {LAB_PACKAGE}:AcmeBms\n" for name in driver_names)
        (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{entries}")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, LAB_PACKAGE, raising=False)

    yield install
    sys.modules.pop(LAB_PACKAGE, None)


@pytest.mark.parametrize(("name", "cls"), BUILT_IN.items())
def test_every_built_in_name_resolves_to_its_driver_class(name, cls):
    assert registry.driver_class(name) is cls
    assert issubclass(cls, Driver)


def test_driver_names_lists_the_built_ins_sorted():
    names = registry.driver_names()
    assert set(BUILT_IN) <= set(names)
    assert names == sorted(names)


def test_an_unknown_name_is_a_key_error_listing_the_known_names():
    with pytest.raises(KeyError) as caught:
        registry.driver_class("chroma-17041")
    message = str(caught.value)
    assert "'chroma-17041'" in message
    for name in BUILT_IN:
        assert name in message


def test_a_lab_driver_from_an_entry_point_resolves(lab_distribution):
    lab_distribution(LAB_DRIVER)
    cls = registry.driver_class(LAB_DRIVER)
    assert (cls.__module__, cls.__name__) == (LAB_PACKAGE, "AcmeBms")
    assert LAB_DRIVER in registry.driver_names()


def test_a_lab_entry_point_cannot_replace_a_built_in_driver(lab_distribution):
    lab_distribution("numato-relay", LAB_DRIVER)
    assert registry.driver_class("numato-relay") is RelayBox
    assert registry.driver_class(LAB_DRIVER).__module__ == LAB_PACKAGE


def test_the_lab_driver_is_gone_once_its_distribution_is(isolated_registry):
    with pytest.raises(KeyError, match=LAB_DRIVER):
        registry.driver_class(LAB_DRIVER)
