"""Settings from files (compose secrets), the CA that TLS clients trust, and the topology job's wait for the broker."""

from __future__ import annotations

import os

import pytest
from kombu.exceptions import OperationalError

from shared.runtime import config, topology


def test_a_setting_is_read_from_the_file_its_FILE_variable_names(tmp_path):
    secret = tmp_path / "amqp_uri"
    secret.write_text("amqps://svc:s3cret@rabbitmq:5671/\n")
    environ = {"TASKLINKR_CONFIG_FILE": os.devnull, "TASKLINKR_AMQP_URI_FILE": str(secret)}
    assert config.get("amqp_uri", environ=environ) == "amqps://svc:s3cret@rabbitmq:5671/"
    # The variable itself wins over its file.
    assert config.get("amqp_uri", environ={**environ, "TASKLINKR_AMQP_URI": "amqp://a@b/"}) == "amqp://a@b/"


def test_a_per_service_setting_is_read_from_that_services_file_only(tmp_path):
    secret = tmp_path / "mongo_uri_billing"
    secret.write_text("mongodb://billing:pw@mongo-billing:27017/?tls=true")
    environ = {"TASKLINKR_CONFIG_FILE": os.devnull, "TASKLINKR_BILLING_MONGO_URI_FILE": str(secret)}
    assert config.get("mongo_uri", "billing", environ) == "mongodb://billing:pw@mongo-billing:27017/?tls=true"
    assert config.get("mongo_uri", "postings", environ) == ""


def test_a_secret_file_that_cannot_be_read_is_a_clear_error_naming_the_variable(tmp_path):
    environ = {"TASKLINKR_CONFIG_FILE": os.devnull, "TASKLINKR_AMQP_URI_FILE": str(tmp_path / "missing")}
    with pytest.raises(ValueError, match="TASKLINKR_AMQP_URI_FILE: cannot read"):
        config.get("amqp_uri", environ=environ)


def test_the_tls_ca_file_becomes_the_ca_store_of_every_tls_client(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    config.apply_tls_settings({"TASKLINKR_CONFIG_FILE": os.devnull, "TASKLINKR_TLS_CA_FILE": str(ca)})
    assert os.environ["SSL_CERT_FILE"] == os.environ["REQUESTS_CA_BUNDLE"] == str(ca)


def test_a_tls_ca_file_that_does_not_exist_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ValueError, match="TASKLINKR_TLS_CA_FILE"):
        config.apply_tls_settings({"TASKLINKR_CONFIG_FILE": os.devnull,
                                   "TASKLINKR_TLS_CA_FILE": str(tmp_path / "nope.pem")})
    assert "SSL_CERT_FILE" not in os.environ


class _Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_topology_job_tries_again_until_the_broker_answers():
    clock, attempts = _Clock(), []

    def apply_once(uri):
        attempts.append(uri)
        if len(attempts) < 4:
            raise OperationalError("[Errno 111] Connection refused")
        return {"exchanges": ["x"], "queues": []}

    declared = topology.apply_when_reachable("amqps://op@rabbitmq:5671/", 60, apply_once=apply_once,
                                             sleep=clock.sleep, clock=lambda: clock.now)
    assert declared == {"exchanges": ["x"], "queues": []}
    assert len(attempts) == 4 and clock.sleeps == [1.0, 2.0, 4.0]


def test_the_topology_job_gives_up_after_its_wait_and_never_retries_other_errors():
    clock = _Clock()

    def unreachable(uri):
        raise OperationalError("[Errno 111] Connection refused")

    with pytest.raises(OperationalError):
        topology.apply_when_reachable("amqps://op@rabbitmq:5671/", 10, apply_once=unreachable,
                                      sleep=clock.sleep, clock=lambda: clock.now)
    assert sum(clock.sleeps) <= 10 and clock.sleeps

    calls = []

    def refused(uri):
        calls.append(uri)
        raise PermissionError("ACCESS_REFUSED")

    with pytest.raises(PermissionError):
        topology.apply_when_reachable("amqps://op@rabbitmq:5671/", 60, apply_once=refused, sleep=clock.sleep,
                                      clock=lambda: clock.now)
    assert len(calls) == 1
