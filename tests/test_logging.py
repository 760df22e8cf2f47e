"""Logging: module loggers under ``sr_core``, the CLI's ``--log-level`` / ``-v`` and ``$SR_CORE_LOG_LEVEL``."""

from __future__ import annotations

import logging

import pytest
import torch

from sr_core.cli import main
from sr_core.errors import ConfigError
from sr_core.logs import configure, resolve_level
from sr_core.model import SRNet, SRNetConfig, save_checkpoint


@pytest.fixture(autouse=True)
def _restore_sr_core_logger():
    logger = logging.getLogger("sr_core")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_levels_from_flag_verbosity_and_environment(monkeypatch):
    monkeypatch.delenv("SR_CORE_LOG_LEVEL", raising=False)
    assert resolve_level() == logging.WARNING
    assert resolve_level(verbose=1) == logging.INFO and resolve_level(verbose=2) == logging.DEBUG
    assert resolve_level("error", verbose=2) == logging.ERROR  # an explicit level wins
    monkeypatch.setenv("SR_CORE_LOG_LEVEL", "debug")
    assert resolve_level() == logging.DEBUG and resolve_level("INFO") == logging.INFO
    monkeypatch.setenv("SR_CORE_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="SR_CORE_LOG_LEVEL 'loud'"):
        resolve_level()
    with pytest.raises(ConfigError, match="--log-level 'chatty'"):
        resolve_level("chatty")


def test_configure_adds_one_stderr_handler_and_follows_a_replaced_stderr(capsys):
    logger = configure("INFO")
    configure("INFO")  # again: still one handler
    assert sum(h.get_name() == "sr_core.logs" for h in logger.handlers) == 1
    logging.getLogger("sr_core.inference").info("hello from the library")
    logging.getLogger("sr_core.inference").debug("not shown")
    err = capsys.readouterr().err
    assert "INFO sr_core.inference: hello from the library" in err and "not shown" not in err


def test_cli_verbose_shows_the_model_load(tmp_path, capsys, monkeypatch):
    from sr_core.model import cache as cache_mod
    from sr_core.model.cache import ModelCache

    monkeypatch.setattr(cache_mod, "MODELS", ModelCache(2))
    torch.manual_seed(0)
    ckpt = save_checkpoint(SRNet(SRNetConfig.preset("tiny")), tmp_path / "m.pt")
    from sr_core.io.eopatch import write_eopatch
    from sr_core.simulate import simulate_patch

    write_eopatch(simulate_patch(3, size=16, split="test"), tmp_path / "in" / "eopatch-01")
    rc = main(["-v", "predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", str(ckpt),
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and "INFO sr_core.model.cache: loaded model" in err and "m.pt" in err


def test_cli_bad_log_level_is_a_usage_error(capsys):
    assert main(["--log-level", "chatty", "info", "."]) == 2
    assert "--log-level 'chatty'" in capsys.readouterr().err
