"""Fixtures for the postings unit tests."""

import pytest

from .builders import make_posting, make_tenant


@pytest.fixture
def tenant():
    return make_tenant(["dental care", "digital_marketing"])


@pytest.fixture
def draft(tenant):
    return make_posting(tenant)
