"""Settings: one object, AGRIMATCH_* variables, secrets masked, clear errors."""

import pytest

from agrimatch.settings import SECRET_MASK, Settings, SettingsError, load_settings


def test_unset_urls_select_the_embedded_broker_and_store(monkeypatch):
    monkeypatch.delenv("AGRIMATCH_MQTT_URL", raising=False)
    monkeypatch.delenv("AGRIMATCH_INFLUX_URL", raising=False)
    settings = load_settings()
    assert settings.mqtt_embedded and settings.influx_embedded


def test_variables_are_read_with_the_agrimatch_prefix(monkeypatch):
    monkeypatch.setenv("AGRIMATCH_INFLUX_URL", "http://127.0.0.1:8086/")
    monkeypatch.setenv("AGRIMATCH_INFLUX_DB", "farms")
    monkeypatch.setenv("AGRIMATCH_INGEST_BATCH_SIZE", "500")
    settings = load_settings()
    assert settings.influx_url == "http://127.0.0.1:8086"
    assert settings.influx_db == "farms"
    assert settings.ingest_batch_size == 500


def test_masked_settings_hide_passwords_and_tokens(monkeypatch):
    monkeypatch.setenv("AGRIMATCH_MQTT_URL", "mqtt://ingest:s3cret-pw@127.0.0.1:1883")
    monkeypatch.setenv("AGRIMATCH_INFLUX_TOKEN", "tok-abcdef")
    monkeypatch.setenv("AGRIMATCH_INFLUX_PASSWORD", "influx-pw")
    shown = load_settings().masked()
    text = repr(shown)
    assert "s3cret-pw" not in text and "tok-abcdef" not in text and "influx-pw" not in text
    assert shown["mqtt_url"] == f"mqtt://ingest:{SECRET_MASK}@127.0.0.1:1883"
    assert shown["influx_token"] == SECRET_MASK


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGRIMATCH_MQTT_URL", "http://broker:1883"),
        ("AGRIMATCH_MQTT_URL", "mqtt://broker:notaport"),
        ("AGRIMATCH_INFLUX_URL", "influx:8086"),
        ("AGRIMATCH_INGEST_BATCH_SIZE", "0"),
        ("AGRIMATCH_MQTT_PROTOCOL", "4"),
        ("AGRIMATCH_CLOCK_SPEED", "-1"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value)


def test_config_show_prints_masked_settings(monkeypatch):
    from typer.testing import CliRunner

    from agrimatch.cli import app

    monkeypatch.setenv("AGRIMATCH_MQTT_URL", "mqtt://ingest:s3cret-pw@127.0.0.1:1883")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "AGRIMATCH_MQTT_URL" in result.output
    assert "s3cret-pw" not in result.output


def test_cli_reports_invalid_settings_with_exit_code_2(monkeypatch):
    from typer.testing import CliRunner

    from agrimatch.cli import app

    monkeypatch.setenv("AGRIMATCH_INFLUX_URL", "nonsense")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "AGRIMATCH_INFLUX_URL" in result.output


def test_the_readme_configuration_table_lists_every_setting_and_no_other():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `AGRIMATCH_"):
            continue
        base = ""
        # "`AGRIMATCH_INFLUX_USERNAME` / `_PASSWORD`": the short form replaces the tail.
        for name in re.findall(r"`(AGRIMATCH_\w+|_\w+)`", row.split("|")[1]):
            if name.startswith("AGRIMATCH_"):
                base = name.removeprefix("AGRIMATCH_")
                listed.add(base)
            else:
                tail, parts = name.strip("_").split("_"), base.split("_")
                listed.add("_".join(parts[: len(parts) - len(tail)] + tail))
    assert listed == {name.upper() for name in Settings.model_fields}
