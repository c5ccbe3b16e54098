"""Shoring classes from real region data, and business-hours overlap computed with real time zones."""

import pytest

from services.matching import geography


@pytest.mark.parametrize("client, provider, expected", [
    (("US", "America/Chicago"), ("US", "America/Los_Angeles"), "onshore"),
    (("US", "America/Chicago"), ("MX", "America/Mexico_City"), "nearshore"),      # neighbours
    (("US", "America/New_York"), ("CO", "America/Bogota"), "nearshore"),          # same M.49 region, 0 h apart
    (("DE", "Europe/Berlin"), ("PL", "Europe/Warsaw"), "nearshore"),
    (("GB", "Europe/London"), ("RO", "Europe/Bucharest"), "nearshore"),           # Europe, 2 h apart
    (("US", "America/New_York"), ("PH", "Asia/Manila"), "offshore"),
    (("GB", "Europe/London"), ("IN", "Asia/Kolkata"), "offshore"),
    (("US", "America/Los_Angeles"), ("AR", "America/Argentina/Buenos_Aires"), "offshore"),  # 5 h apart
    (("AU", "Australia/Sydney"), ("PH", "Asia/Manila"), "offshore"),              # other region
])
def test_shoring_classes(client, provider, expected):
    assert geography.shoring_class(*client, *provider) == expected


def test_regions_and_borders_come_from_the_data_set():
    assert geography.region_of("MX") == geography.region_of("BR") == "Americas"
    assert geography.are_neighbours("US", "MX") and not geography.are_neighbours("US", "PH")
    assert geography.region_of("ZZ") is None


def test_business_hours_are_forty_hours_in_any_zone():
    assert geography.hours(geography.business_hours_mask("America/Chicago")) == 40
    assert geography.hours(geography.business_hours_mask("Asia/Kathmandu")) == 40


def test_overlap_uses_each_zones_real_offset_and_night_shifts_cross_midnight():
    chicago = geography.business_hours_mask("America/Chicago")
    weekdays = ("mon", "tue", "wed", "thu", "fri")
    manila_day = geography.schedule_mask("Asia/Manila", ((weekdays, "08:00", "17:00"),))
    manila_night = geography.schedule_mask("Asia/Manila", ((weekdays, "22:00", "07:00"),))
    bogota = geography.schedule_mask("America/Bogota", ((weekdays, "09:00", "17:00"),))
    assert geography.hours(chicago & manila_day) == 0
    assert geography.hours(chicago & manila_night) == 40
    assert geography.hours(chicago & bogota) == 35  # Bogotá is an hour ahead of Chicago in January


def test_a_shift_that_runs_past_sunday_midnight_utc_wraps_to_the_start_of_the_week():
    every_day_late = geography.schedule_mask("America/Los_Angeles", ((("sun",), "20:00", "23:00"),))
    assert geography.hours(every_day_late) == 3
    # Sunday 20:00-23:00 in Los Angeles is Monday 04:00-07:00 UTC: half-hour slots 8 to 13 of the week
    assert every_day_late == sum(1 << slot for slot in range(8, 14))
