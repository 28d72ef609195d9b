"""Local tooling for demos and tests, not needed to run launches.

- `stack`: a local Prefect server on SQLite, the deployments' runner and the receiver, in one
  folder (`weapp-launch up` / `demo`, the end-to-end tests, the benchmarks);
- `demo`: `weapp-launch demo` and `weapp-launch up`;
- `simulator`: the outside world (staff, client, WeChat, MIIT, the bureau) played from a script;
- `sinks`: a local SMTP server and phone-gateway endpoint the demo's alerts go to (needs the
  `dev` extra: `pip install -e '.[dev]'`).

Nothing under `launch/`, `flows/`, `tasks/` or `notifiers/` imports this package; the CLI's
`demo` and `up` commands import it when they run.
"""
