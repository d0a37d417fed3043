"""After log-on the portal goes to the page asked for only if that is a page of the portal: no open redirects."""

from __future__ import annotations

import pytest

from integrator.faces.portal.redirects import safe_next


@pytest.mark.parametrize("asked", ["/portal", "/portal/", "/portal/lookup/", "/portal/lookup/?insz=48021420212#top"])
def test_a_page_of_the_portal_is_where_the_log_on_goes_back_to(asked: str) -> None:
    assert safe_next(asked, "/portal") == asked


@pytest.mark.parametrize("asked", [
    "https://evil.example/", "http://127.0.0.1:8080/portal/", "//evil.example/portal/", "///evil.example",
    "/\\evil.example", "\\\\evil.example", "javascript:alert(1)", "/services", "/portalx", "portal/",
    "/portal/../services", "/portal/%2e%2e/services", "/portal//evil.example", "/portal/\r\nSet-Cookie: x=1",
    "", None, "/portal/" + "a" * 3000,
])
def test_anything_else_is_refused(asked: str | None) -> None:
    assert safe_next(asked, "/portal") is None
