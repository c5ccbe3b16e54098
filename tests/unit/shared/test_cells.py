"""A service deployed in cells: each lane's database is its own, and the operator's tools find each cell."""

from __future__ import annotations

from shared.runtime import config

NO_FILE = {"TASKLINKR_CONFIG_FILE": "/nonexistent/tasklinkr.yaml"}


def test_without_cells_configured_each_service_has_one_database():
    environ = {**NO_FILE, "TASKLINKR_MATCHING_MONGO_URI": "mongodb://one/"}
    assert config.databases(environ) == config.DATA_SERVICES


def test_with_a_cells_uri_configured_the_tools_read_each_cell_of_the_service(tmp_path):
    uri_file = tmp_path / "mongo-uri-matching-smb"
    uri_file.write_text("mongodb://mongo-matching-smb:27017/")
    environ = {**NO_FILE, "TASKLINKR_MONGO_URI": "mongodb://shared/",
               "TASKLINKR_MATCHING_ENTERPRISE_MONGO_URI": "mongodb://mongo-matching-enterprise:27017/",
               "TASKLINKR_MATCHING_SMB_MONGO_URI_FILE": str(uri_file)}
    databases = config.databases(environ)
    assert [name for name in databases if name.startswith("matching")] == ["matching-enterprise", "matching-smb"]
    assert "billing" in databases
    assert config.get("mongo_uri", "matching-enterprise", environ) == "mongodb://mongo-matching-enterprise:27017/"
    assert config.get("mongo_uri", "matching-smb", environ) == "mongodb://mongo-matching-smb:27017/"
    # Each cell holds the service's database under the service's name, on a server of its own.
    assert config.get("mongo_database", "matching-smb", environ) == "tasklinkr_matching"
    assert config.service_of("matching-smb") == "matching"
