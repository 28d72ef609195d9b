"""The orchestrator port: start a run, read its state, park at a gate, resume it.

`prefect` is the real one (Prefect's client); `memory` runs flow bodies in-process with the
rules Prefect enforces, for the flow-logic tests. `names` holds the deployment names.
"""
