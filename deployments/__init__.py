"""The composition root of the Prefect processes: how the flows are built and served."""
