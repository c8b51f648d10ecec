"""RedactingFilter + EcsJsonFormatter: secrets never reach a log line, ordinary fields do unchanged."""

from __future__ import annotations

import pytest

from telemetry.redaction import REDACTED, redact_text


def test_secret_named_extra_fields_are_redacted(log_lines):
    logger, read = log_lines
    logger.info("calling partner", extra={"api_key": "k-123", "user.password": "hunter2",
                                          "partner.token": "t-9", "db.dsn": "postgresql://a:b@h/db"})
    line = read()[0]
    assert line["api_key"] == REDACTED
    assert line["user.password"] == REDACTED
    assert line["partner.token"] == REDACTED
    assert line["db.dsn"] == REDACTED


def test_authorization_header_inside_a_headers_field_is_redacted(log_lines):
    logger, read = log_lines
    logger.info("upstream request", extra={"http.request.headers": {
        "Authorization": "Bearer eyJhbGciOi.abc", "X-Request-ID": "req-1", "Accept": "application/json"}})
    headers = read()[0]["http.request.headers"]
    assert headers == {"Authorization": REDACTED, "X-Request-ID": "req-1", "Accept": "application/json"}


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer eyJhbGciOi.abc-def", "eyJhbGciOi.abc-def"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Authorization: Token abc123", "abc123"),
    ("sent Bearer abc.def to the MES", "abc.def"),
    ("Cookie: session=s3ss10n; theme=dark", "s3ss10n"),
])
def test_credentials_in_message_text_are_redacted(log_lines, text, secret):
    logger, read = log_lines
    logger.warning(text)
    message = read()[0]["message"]
    assert secret not in message
    assert REDACTED in message


@pytest.mark.parametrize(("dsn", "password"), [
    ("postgresql://mes:s3cret@db:5432/mes", "s3cret"),
    ("redis://:r3dis@cache:6379/0", "r3dis"),
    ("amqp://user:p%40ss@broker/", "p%40ss"),
])
def test_passwords_in_dsns_are_redacted_and_the_host_kept(log_lines, dsn, password):
    logger, read = log_lines
    logger.error("cannot connect to %s", dsn)
    message = read()[0]["message"]
    assert password not in message
    assert "@" in message
    assert REDACTED in message


@pytest.mark.parametrize(("query", "expected"), [
    ("/partner/v1/quotes?api_key=k-1&page=2", "/partner/v1/quotes?api_key=[REDACTED]&page=2"),
    ("/cb?access_token=abc&state=x", "/cb?access_token=[REDACTED]&state=x"),
    ("/login?client_secret=zz&password=pw", "/login?client_secret=[REDACTED]&password=[REDACTED]"),
])
def test_secrets_in_query_strings_are_redacted_other_parameters_kept(query, expected):
    assert redact_text(query) == expected


def test_json_encoded_password_in_message_is_redacted():
    redacted = redact_text('{"password": "hunter2", "user": "bob"}')
    assert redacted == '{"password": "[REDACTED]", "user": "bob"}'


def test_ordinary_fields_and_text_pass_unchanged(log_lines):
    logger, read = log_lines
    logger.info("order O-17 moved to SHIPPED after 3 tokens of %s", "GET /orders?status=SHIPPED&page=2",
                extra={"order.id": "O-17", "http.request.id": "req-1", "event.duration": 1_500_000,
                       "url.original": "https://mes.local/orders/42", "order.status.new": "SHIPPED"})
    line = read()[0]
    assert line["message"] == ("order O-17 moved to SHIPPED after 3 tokens of "
                               "GET /orders?status=SHIPPED&page=2")
    assert line["order.id"] == "O-17"
    assert line["http.request.id"] == "req-1"
    assert line["event.duration"] == 1_500_000
    assert line["url.original"] == "https://mes.local/orders/42"
    assert line["order.status.new"] == "SHIPPED"
