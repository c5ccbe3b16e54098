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


# -- splitting a database from before cells (``tasklinkr split``) ---------------------------------------------


def billing_backup() -> dict[str, list[dict]]:
    """A billing database with an account in each lane and what was billed on each."""
    return {
        "accounts": [{"_id": "ctr_e", "lane": "enterprise"}, {"_id": "ctr_s", "lane": "smb"}],
        "items": [{"_id": "itm_1", "contract_id": "ctr_e"}, {"_id": "itm_2", "contract_id": "ctr_s"},
                  {"_id": "itm_3", "contract_id": "ctr_s"}],
        "invoices": [{"_id": "inv_1", "contract_id": "ctr_e", "lane": "enterprise"}],
        "payments": [], "refunds": [], "credits": [{"_id": "crd_1", "contract_id": "ctr_s"}], "credit_notes": [],
        "tenants": [{"_id": "ten_1"}, {"_id": "ten_2"}], "providers": [{"_id": "prv_1"}],
        "counters": [{"_id": "invoices:provider:prv_1", "value": 3}], "in_house_costs": [],
        "applied_events": [{"_id": "evt_1"}], "relay_lease": [{"_id": "outbox:smb"}],
        "outbox_20261201T000000_3600": [{"_id": "seg_1"}],
    }


def ids(documents: list[dict]) -> list[str]:
    return [document["_id"] for document in documents]


def test_a_billing_database_splits_into_each_lanes_accounts_what_was_billed_on_them_and_the_shared_rest():
    from shared.tools.backup import split_documents, split_rule

    parts = split_documents(billing_backup(), split_rule("billing"))

    enterprise, smb = parts["enterprise"], parts["smb"]
    assert ids(enterprise["accounts"]) == ["ctr_e"] and ids(smb["accounts"]) == ["ctr_s"]
    assert ids(enterprise["items"]) == ["itm_1"] and ids(smb["items"]) == ["itm_2", "itm_3"]
    assert ids(enterprise["invoices"]) == ["inv_1"] and smb["invoices"] == []
    assert enterprise["credits"] == [] and ids(smb["credits"]) == ["crd_1"]
    for name in ("tenants", "providers", "counters", "applied_events", "relay_lease", "outbox_20261201T000000_3600"):
        assert ids(enterprise[name]) == ids(smb[name]) == ids(billing_backup()[name]), name


def test_a_matching_database_splits_its_postings_by_lane_and_keeps_every_projection_whole():
    from shared.tools.backup import split_documents, split_rule

    backup = {"postings": [{"_id": "pst_1", "lane": "smb"}, {"_id": "pst_2", "lane": "enterprise"}],
              "providers": [{"_id": "prv_1"}], "contracts": [{"_id": "ctr_1"}], "tenants": [], "sla_results": [],
              "early_provider_facts": []}
    parts = split_documents(backup, split_rule("matching"))
    assert ids(parts["smb"]["postings"]) == ["pst_1"] and ids(parts["enterprise"]["postings"]) == ["pst_2"]
    assert ids(parts["smb"]["providers"]) == ids(parts["enterprise"]["providers"]) == ["prv_1"]


@pytest.mark.parametrize("change, refusal", [
    (lambda b: b.update(disputes=[{"_id": "dsp_1"}]), "collections the split does not know: disputes"),
    (lambda b: b["accounts"].append({"_id": "ctr_x"}), "1 document(s) of accounts belong to no cell: no lane"),
    (lambda b: b["accounts"].append({"_id": "ctr_x", "lane": "mid-market"}), "accounts belong to no cell"),
    (lambda b: b["payments"].append({"_id": "pay_1", "contract_id": "ctr_gone"}),
     "1 document(s) of payments belong to no cell: its 'contract_id' is no accounts document's"),
])
def test_a_document_the_split_cannot_place_stops_it_rather_than_being_dropped_or_copied_by_a_guess(change, refusal):
    from shared.tools.backup import BackupError, split_documents, split_rule

    backup = billing_backup()
    change(backup)
    with pytest.raises(BackupError, match="nothing was written") as refused:
        split_documents(backup, split_rule("billing"))
    assert refusal in str(refused.value)


def test_only_a_service_in_cells_is_split():
    from shared.tools.backup import BackupError, split_rule

    with pytest.raises(BackupError, match="postings does not run in cells"):
        split_rule("postings")
