"""Flow logic: the order of a launch's steps, as plain Python against the `Steps` port.

Nothing here imports Prefect. The Prefect flows (`flows/`) bind these bodies to Prefect tasks
and suspends; the flow-logic tests run them on the in-memory orchestrator
(`launch.orchestration.memory`), which enforces what Prefect enforces.
"""
