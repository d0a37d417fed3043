"""The portal's settings, checked at start-up like every other: one line naming the variable and what it takes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrator.config import Settings, SettingsError


def test_the_defaults_are_the_safe_ones() -> None:
    portal = Settings.from_env({}).portal
    assert portal.cookie_secure and portal.trusted_proxies == ()
    assert portal.idle_timeout == timedelta(minutes=15) and portal.absolute_timeout == timedelta(hours=8)
    assert (portal.user_failures, portal.address_failures) == (5, 20)


def test_the_settings_are_read_from_the_environment() -> None:
    portal = Settings.from_env({"KRUISPUNT_PORTAL_COOKIE_SECURE": "off", "KRUISPUNT_PORTAL_IDLE_SECONDS": "60",
                                "KRUISPUNT_PORTAL_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
                                "KRUISPUNT_PORTAL_CERTIFICATE_HEADER": "X-SSL-Client-Cert",
                                "KRUISPUNT_PORTAL_LOCKOUT_SECONDS": "300"}).portal
    assert not portal.cookie_secure and portal.idle_timeout == timedelta(seconds=60)
    assert portal.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32")
    assert portal.certificate_header == "X-SSL-Client-Cert" and portal.lockout == timedelta(minutes=5)


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("KRUISPUNT_PORTAL_COOKIE_SECURE", "maybe", "one of 1, true, yes, on, 0, false, no, off"),
    ("KRUISPUNT_PORTAL_TRUSTED_PROXIES", "10.0.0.0/8, lb.example", "IP addresses or networks"),
    ("KRUISPUNT_PORTAL_CERTIFICATE_HEADER", "X Client: Cert", "an HTTP header name"),
    ("KRUISPUNT_PORTAL_IDLE_SECONDS", "0", "a number above 0"),
    ("KRUISPUNT_PORTAL_ABSOLUTE_SECONDS", "never", "a number above 0"),
    ("KRUISPUNT_PORTAL_USER_FAILURES", "0", "a whole number of at least 1"),
    ("KRUISPUNT_PORTAL_ADDRESS_FAILURES", "many", "a whole number"),
    ("KRUISPUNT_PORTAL_FAILURE_WINDOW_SECONDS", "-1", "a number above 0"),
    ("KRUISPUNT_PORTAL_LOCKOUT_SECONDS", "inf", "a number above 0"),
])
def test_a_value_the_portal_cannot_use_is_refused_in_one_line(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value).startswith(f"{variable}={value!r}: expected {expected}")
    assert raised.value.variable == variable
