"""`python -m launch …` is `weapp-launch …` (the local stack starts its processes this way)."""

from launch.cli import app

app()
