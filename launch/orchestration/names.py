"""Deployment names: here and in prefect.yaml (a test keeps the two equal)."""

DEPLOYMENT_NAME = "default"

# flow name -> its deployment, as run_deployment() wants it
LAUNCH = f"launch/{DEPLOYMENT_NAME}"


def deployment_of(flow_name: str) -> str:
    return f"{flow_name}/{DEPLOYMENT_NAME}"
