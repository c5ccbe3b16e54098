"""A service deployed in cells: each lane's database is its own, and the operator's tools find each cell."""

from __future__ import annotations

import pytest

from shared.runtime import config

NO_FILE = {"TASKLINKR_CONFIG_FILE": "/nonexistent/tasklinkr.yaml"}


def test_matching_and_billing_are_deployed_in_cells():
    assert config.CELL_SERVICES == ("matching", "billing")


def test_without_cells_configured_each_service_has_one_database():
    environ = {**NO_FILE, "TASKLINKR_MATCHING_MONGO_URI": "mongodb://one/", "TASKLINKR_BILLING_MONGO_URI": "mongodb://b/"}
    assert config.databases(environ) == config.DATA_SERVICES


@pytest.mark.parametrize("service", config.CELL_SERVICES)
def test_with_a_cells_uri_configured_the_tools_read_each_cell_of_the_service(tmp_path, service):
    uri_file = tmp_path / f"mongo-uri-{service}-smb"
    uri_file.write_text(f"mongodb://mongo-{service}-smb:27017/")
    prefix = f"TASKLINKR_{service.upper()}"
    environ = {**NO_FILE, "TASKLINKR_MONGO_URI": "mongodb://shared/",
               f"{prefix}_ENTERPRISE_MONGO_URI": f"mongodb://mongo-{service}-enterprise:27017/",
               f"{prefix}_SMB_MONGO_URI_FILE": str(uri_file)}
    databases = config.databases(environ)
    assert [name for name in databases if name.startswith(service)] == [f"{service}-enterprise", f"{service}-smb"]
    assert "postings" in databases
    assert config.get("mongo_uri", f"{service}-enterprise", environ) == f"mongodb://mongo-{service}-enterprise:27017/"
    assert config.get("mongo_uri", f"{service}-smb", environ) == f"mongodb://mongo-{service}-smb:27017/"
    # Each cell holds the service's database under the service's name, on a server of its own.
    assert config.get("mongo_database", f"{service}-smb", environ) == f"tasklinkr_{service}"
    assert config.service_of(f"{service}-smb") == service


def test_a_cells_uri_not_given_is_the_services_so_one_database_keeps_serving_every_lane(tmp_path):
    """The upgrade path: a deployment that names billing's one database keeps it for both lanes' processes and its
    tools read it as ``billing``, until the cells are given URIs of their own."""
    environ = {**NO_FILE, "TASKLINKR_MONGO_URI": "mongodb://shared/", "TASKLINKR_BILLING_MONGO_URI": "mongodb://old/"}
    assert config.get("mongo_uri", "billing-enterprise", environ) == "mongodb://old/"
    assert config.get("mongo_uri", "billing-smb", environ) == "mongodb://old/"
    assert "billing" in config.databases(environ) and "billing-smb" not in config.databases(environ)
    # A cell's own URI wins over the service's; the same in the YAML file.
    assert config.get("mongo_uri", "billing-smb", {**environ, "TASKLINKR_BILLING_SMB_MONGO_URI": "mongodb://c/"}) \
        == "mongodb://c/"
    yaml_file = tmp_path / "tasklinkr.yaml"
    yaml_file.write_text("services:\n  billing: {mongo_uri: 'mongodb://y/'}\n")
    from_yaml = {"TASKLINKR_CONFIG_FILE": str(yaml_file)}
    assert config.get("mongo_uri", "billing-enterprise", from_yaml) == "mongodb://y/"
    # Only the cells' own URIs differ from the service's: then the tools read each cell.
    cells = {**environ, "TASKLINKR_BILLING_ENTERPRISE_MONGO_URI": "mongodb://e/"}
    assert [name for name in config.databases(cells) if name.startswith("billing")] == ["billing-enterprise",
                                                                                          "billing-smb"]
