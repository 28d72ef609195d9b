"""Tests of the WeChat stand-in (devtools/wechat_standin) through real HTTP; no Prefect server."""

from tests.support.standin import standin, standin_config, standin_receiver  # noqa: F401  (fixtures)
