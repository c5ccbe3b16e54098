"""`tasklinkr demo` finds the platform the way `make run` left it, and says so when it is not there."""

import pytest

from shared.tools.demo import command
from tests.support.infra import free_port


@pytest.fixture
def settings(monkeypatch, tmp_path):
    for name in ("TASKLINKR_OPERATOR_KEY", "TASKLINKR_GATEWAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKLINKR_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("TASKLINKR_DATA_DIR", str(tmp_path))
    return monkeypatch


def test_the_operator_key_is_the_setting_else_the_file_make_run_generated(settings, tmp_path):
    with pytest.raises(command.NoPlatform, match="make run"):
        command.operator_key()
    (tmp_path / "operator_key").write_text("from-the-file\n")
    assert command.operator_key() == ("from-the-file", str(tmp_path / "operator_key"))
    settings.setenv("TASKLINKR_OPERATOR_KEY", "from-the-environment")
    assert command.operator_key() == ("from-the-environment", "TASKLINKR_OPERATOR_KEY")


def test_the_gateway_url_follows_its_address_setting(settings):
    assert command.gateway_url() == "http://127.0.0.1:8080"
    settings.setenv("TASKLINKR_GATEWAY_ADDRESS", "0.0.0.0:18080")
    assert command.gateway_url() == "http://127.0.0.1:18080"


def test_no_platform_answering_is_said_in_words_before_anything_is_created(settings, tmp_path):
    settings.setenv("TASKLINKR_OPERATOR_KEY", "k")
    port = free_port()
    with pytest.raises(command.NoPlatform, match=f"does not answer at http://127.0.0.1:{port}"):
        command.run(url=f"http://127.0.0.1:{port}", output_dir=tmp_path / "demo")
    assert not (tmp_path / "demo").exists()
